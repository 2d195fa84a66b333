"""KafkaSource's consumer on librdkafka (AUTH_CONSUMER=confluent): a fetch is one
`consume(n)` whose records become columns at once, where aiokafka builds a Python record
object per message (a fifth of a worker's time on one reading per message).

The calls KafkaSource makes of aiokafka keep their meaning. How, given that consume()
blocks and that the client serialises calls (any call waits for a running consume):
- consume() runs in one thread of its own, and only that thread calls the client: the
  asyncio loop (Faust, Redis commits, side outputs) never waits on it;
- pause, resume and seek from the loop are recorded, and applied in that thread before
  the next consume(); a seek becomes the offset of a new assignment;
- librdkafka calls the rebalance callbacks from inside consume(), in that thread: each
  hands the change to the loop (the listener, as with aiokafka) and waits for it; what the
  loop decided there (seeks, pauses) is the assignment's offsets and pauses;
- a consume() during which the assignment changed may hold records fetched before the
  change: that batch is dropped and the partitions are read again from the decided offsets;
- the log start comes from a second client (the first may be waiting on this very
  assignment); the partitions' ends are noted after each fetch;
- the next fetch starts as soon as one is handed over, so librdkafka reads while the loop
  processes (one in flight). A fetch that started before a seek, pause or resume is
  dropped when handed over, and its partitions read again from the decided offsets; a
  partition's position moves only when its records are handed over.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError as SourceError
from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, KafkaException
from confluent_kafka import TopicPartition as Partition

from auth_kappa import kafka_clients
from auth_kappa.topology.decode import MessageBatch

if TYPE_CHECKING:
    from auth_kappa.config import Config

log = logging.getLogger("auth_kappa.source")
# the read-ahead's wait. consume() short of its message count waits out its whole timeout,
# and that timeout is fixed a call early: caught up, a long one (the 0.2 s batch wait) made
# every fetch of a slow stream 0.2 s and checkpoints fall 0.4 s apart, not 0.25; catching
# up, a short one cut frames' fetches small (373k vs 491k frames/s in bench_worker)
AHEAD_WAIT = 0.05    # s: caught up
BACKLOG_WAIT = 0.2   # s: the broker holds more than the last fetch took


def group_settings(config: Config, group: str) -> dict[str, Any]:
    """As kafka_admin.group_consumer's: no auto-commit (progress lives in Redis), large
    fetches, a short session, fresh metadata; round-robin like aiokafka's default, so both
    kinds of worker can share a group while one replaces the other."""
    return {**kafka_clients.librdkafka(config), "group.id": group,
            "enable.auto.commit": False, "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest", "partition.assignment.strategy": "roundrobin",
            "session.timeout.ms": int(config.session_timeout * 1000),
            "heartbeat.interval.ms": int(min(3.0, config.session_timeout / 3) * 1000),
            "max.poll.interval.ms": 300_000, "topic.metadata.refresh.interval.ms": 30_000,
            "fetch.max.bytes": 64 * 1024 * 1024,
            "max.partition.fetch.bytes": 8 * 1024 * 1024,
            # read-ahead held in memory: a few fetches' worth. librdkafka's defaults (100k
            # messages per partition, 64 MB) cost ~500 MB more peak RSS than aiokafka on
            # one reading per message in bench_worker
            "queued.min.messages": 20_000, "queued.max.messages.kbytes": 32 * 1024}


class ConfluentConsumer:
    """The subset of AIOKafkaConsumer that KafkaSource uses; getmany gives MessageBatch
    columns per partition instead of record lists."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self._settings = settings
        self._consumer: Consumer | None = None
        self._lookup: Consumer | None = None             # log starts (see module doc)
        self._topics: list[str] = []
        self._listener: ConsumerRebalanceListener | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="kafka-consume")
        self._assigned: set[TopicPartition] = set()
        self._position: dict[TopicPartition, int] = {}   # next offset to read, when known
        self._paused: set[TopicPartition] = set()        # what the loop wants paused
        self._applied: set[TopicPartition] = set()       # what the client has paused
        self._high: dict[TopicPartition, int] = {}       # partition ends, as of the last fetch
        self._partitions: dict[str, set[int]] = {}       # topic metadata, as last read
        self._reread = False       # positions moved: assign them before the next consume
        self._rebalanced = False   # a rebalance ran inside the current consume
        self._closing = False
        self._epoch = 0            # bumped by seek, pause, resume: older fetches are stale
        self._ahead: asyncio.Future | None = None   # the fetch started after the last one
        self._backlog = False   # the last fetch left more in the broker than it took

    # -- lifecycle
    def subscribe(self, topics: Iterable[str], listener: ConsumerRebalanceListener) -> None:
        self._topics, self._listener = list(topics), listener

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._consumer = Consumer(self._settings)
        self._lookup = Consumer(self._settings)          # never subscribes: no member
        await self._loop.run_in_executor(self._thread, self._read_metadata)
        self._consumer.subscribe(self._topics, on_assign=self._on_assign,
                                 on_revoke=self._on_revoke, on_lost=self._on_revoke)

    async def stop(self) -> None:
        """Leave the group. The revoke this causes is not handed to the loop: the source
        took its last checkpoint already (or is broken, and must not take one)."""
        self._closing = True
        await self._drop_ahead()
        if self._consumer is not None:
            await self._loop.run_in_executor(self._thread, self._consumer.close)
            await asyncio.to_thread(self._lookup.close)
        self._thread.shutdown(wait=False)

    # -- fetching
    async def getmany(self, timeout_ms: int, max_records: int
                      ) -> dict[TopicPartition, MessageBatch]:
        ahead, self._ahead = self._ahead, None
        epoch, out = await (ahead or self._start(timeout_ms / 1000, max_records))
        if epoch != self._epoch:           # a seek, pause or resume came after it began
            self._reread, out = True, {}
        for tp, batch in out.items():
            self._position[tp] = int(batch.offset[-1]) + 1
        if not self._closing:
            wait = BACKLOG_WAIT if self._backlog else min(timeout_ms / 1000, AHEAD_WAIT)
            self._ahead = self._start(wait, max_records)
        return out

    def _start(self, timeout: float, limit: int) -> asyncio.Future:
        epoch = self._epoch
        return self._loop.run_in_executor(self._thread, lambda: (epoch, self._fetch(
            timeout, limit)))

    def _fetch(self, timeout: float, limit: int) -> dict[TopicPartition, MessageBatch]:
        if self._reread:
            self._assign_positions()
        else:
            self._apply_pauses()
        self._rebalanced = False
        records = self._consumer.consume(limit, timeout)
        if self._rebalanced or self._reread:   # may mix records from before the change
            self._reread = True
            return {}
        out = self._columns(records)
        for tp in self._assigned:
            try:
                high = self._consumer.get_watermark_offsets(
                    Partition(tp.topic, tp.partition), cached=True)[1]
            except KafkaException:
                continue
            if high is not None and high >= 0:
                self._high[tp] = high
        after = {tp: int(b.offset[-1]) + 1 for tp, b in out.items()}
        waiting = sum(max(0, h - after.get(tp, self._position.get(tp, h)))
                      for tp, h in self._high.items() if tp in self._assigned)
        self._backlog = waiting > len(records)   # catching up: batches of BACKLOG_WAIT
        return out

    async def idle(self, seconds: float) -> None:
        """Serve the group (rebalance callbacks) for a while without reading: whatever
        consume() returns meanwhile is dropped and read again from the decided offsets."""
        await self._drop_ahead()
        await self._loop.run_in_executor(self._thread, self._idle, seconds)

    async def _drop_ahead(self) -> None:
        """Not reading now: the fetch started ahead is read again later (or never)."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            try:
                await ahead
            except Exception:   # noqa: BLE001 - its records are not used; a fault shows
                pass            # again on the next fetch
            self._reread = True

    def _idle(self, seconds: float) -> None:
        if self._reread:
            self._assign_positions()
        else:
            self._apply_pauses()
        if self._consumer.consume(1000, seconds):
            self._reread = True

    def _columns(self, records: list) -> dict[TopicPartition, MessageBatch]:
        if not records:
            return {}
        errors = [r for r in records if r.error() is not None]
        if errors:
            for r in errors:
                if r.error().fatal():
                    raise ConsumeFailed(str(r.error()))
                if r.error().code() != KafkaError._PARTITION_EOF:
                    log.warning("consume: %s", r.error())
            records = [r for r in records if r.error() is None]
            if not records:
                return {}
        n = len(records)
        values = [r.value() for r in records]
        topics = [r.topic() for r in records]
        partition = np.fromiter((r.partition() for r in records), np.int32, n)
        offset = np.fromiter((r.offset() for r in records), np.int64, n)
        stamp = MessageBatch.seconds(np.fromiter((r.timestamp()[1] for r in records),
                                                 np.float64, n))
        names = sorted(set(topics))
        code = (np.zeros(n, np.int64) if len(names) == 1 else
                np.array([names.index(t) for t in topics], np.int64))
        key = code * (1 << 32) + partition
        order = np.argsort(key, kind="stable")   # a partition's records keep their order
        key = key[order]
        cuts = np.flatnonzero(np.diff(key)) + 1
        out: dict[TopicPartition, MessageBatch] = {}
        for lo, hi in zip(np.concatenate(([0], cuts)), np.concatenate((cuts, [n])),
                          strict=True):
            idx = order[lo:hi]
            tp = TopicPartition(names[int(key[lo] >> 32)], int(partition[idx[0]]))
            out[tp] = MessageBatch([values[i] for i in idx], partition[idx], offset[idx],
                                   stamp[idx])
        return out

    # -- rebalancing (called inside consume, in its thread)
    def _on_assign(self, consumer: Consumer, partitions: list[Partition]) -> None:
        tps = {TopicPartition(p.topic, p.partition) for p in partitions}
        self._assigned, self._position, self._high = set(tps), {}, {}
        self._paused &= tps
        self._read_metadata()
        if not self._closing:
            self._hand_over(self._listener.on_partitions_assigned(set(tps)))
        self._assign_positions()
        self._rebalanced = True

    def _on_revoke(self, consumer: Consumer, partitions: list[Partition]) -> None:
        tps = {TopicPartition(p.topic, p.partition) for p in partitions}
        if not self._closing:
            self._hand_over(self._listener.on_partitions_revoked(set(tps)))
        consumer.unassign()
        self._assigned, self._position = set(), {}
        self._paused -= tps
        self._rebalanced = True

    def _hand_over(self, work: Any) -> None:
        """Run the listener's coroutine on the loop and wait for it (as aiokafka does)."""
        try:
            asyncio.run_coroutine_threadsafe(work, self._loop).result()
        except Exception:   # noqa: BLE001 - as aiokafka: a listener error is logged
            log.exception("rebalance listener failed")

    def _assign_positions(self) -> None:
        """The assignment, from the decided positions (none decided: the group's committed
        offset, else the log start, as aiokafka with auto_offset_reset=earliest)."""
        self._reread = False
        self._consumer.assign([Partition(tp.topic, tp.partition,
                                         self._position.get(tp, OFFSET_INVALID))
                               for tp in sorted(self._assigned)])
        # librdkafka keeps a partition's pause across an assign: set every one explicitly
        want = self._paused & self._assigned
        if self._assigned - want:
            self._consumer.resume(self._c(self._assigned - want))
        if want:
            self._consumer.pause(self._c(want))
        self._applied = want

    def _apply_pauses(self) -> None:
        want = self._paused & self._assigned
        self._applied &= self._assigned
        if want - self._applied:
            self._consumer.pause(self._c(want - self._applied))
        if self._applied - want:
            self._consumer.resume(self._c(self._applied - want))
        self._applied = want

    def _read_metadata(self) -> None:
        try:
            meta = self._consumer.list_topics(timeout=10)
        except KafkaException as exc:
            log.warning("topic metadata not read (%s); keeping the last", exc)
            return
        self._partitions = {name: set(t.partitions) for name, t in meta.topics.items()
                            if t.error is None}

    # -- what the loop calls
    @property
    def backlog(self) -> bool:
        """The last fetch left more in the broker than it took (the read-ahead then waits
        BACKLOG_WAIT for a full batch)."""
        return self._backlog

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self._partitions.get(topic)

    def highwater(self, tp: TopicPartition) -> int | None:
        """The partition's end as of the last fetch (None until a fetch told it)."""
        return self._high.get(tp)

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        def query() -> dict[TopicPartition, int]:
            return {tp: self._lookup.get_watermark_offsets(
                Partition(tp.topic, tp.partition), timeout=10)[0] for tp in tps}

        try:
            return await asyncio.to_thread(query)
        except (KafkaException, TypeError) as exc:   # TypeError: None on a timeout
            raise ConsumeFailed(f"log start unknown: {exc}") from exc

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._position[tp] = int(offset)
        self._reread = True
        self._epoch += 1

    def pause(self, *tps: TopicPartition) -> None:
        self._paused |= set(tps)
        self._epoch += 1

    def resume(self, *tps: TopicPartition) -> None:
        self._paused -= set(tps)
        self._epoch += 1

    @staticmethod
    def _c(tps: set[TopicPartition]) -> list[Partition]:
        return [Partition(tp.topic, tp.partition) for tp in sorted(tps)]


class ConsumeFailed(SourceError):
    """What librdkafka refused, as the error type the source already handles (FAULTS)."""
