"""The archiver: its own consumer group, rolls per partition, uploads, progress, back-off.

It runs inside the Faust worker next to the stream (app.py), but shares nothing with it
except the process: its position is the archive's progress objects, so the stream and
the archive never wait for each other. Exactly once (see auth_kappa.archive):
progress says "pending first..last" ► data objects ► progress says "next = last + 1"
► Kafka commit. A new owner redoes a pending roll with the same boundaries.

S3 outage: rolls stay in memory and the uploader backs off (0.5 s doubling up to
AUTH_ARCHIVE_RETRY_MAX); when the buffered bytes pass AUTH_ARCHIVE_BUFFER_BYTES every
partition is paused (the consumer keeps polling, so it stays in the group) and resumed
below half the bound. The bound can be passed by at most one fetch (AUTH_BATCH_SIZE
records, plus the rest of the last record batch), which arrived before the check. Nothing is committed that is not uploaded, so a crash during an
outage loses nothing either: Kafka still has it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from auth_kappa import kafka_columns
from auth_kappa.archive import layout
from auth_kappa.archive.rolls import Progress, Roll, Sealed
from auth_kappa.archive.store import ObjectStore, StoreUnavailable
from auth_kappa.config import Config
from auth_kappa.kafka_admin import group_consumer
from auth_kappa.topology.decode import MessageBatch
from auth_kappa.topology.validate import Rules

log = logging.getLogger("auth_kappa.archive")
DRAIN_SECONDS = 15.0   # a graceful stop's wait for S3 to take what is buffered


@dataclass
class ArchiveStats:
    rows: int = 0
    quarantined: int = 0
    rolls: int = 0
    objects: int = 0
    failed_attempts: int = 0
    pauses: int = 0


@dataclass
class Archiver:
    config: Config
    store: ObjectStore
    group: str = ""
    stats: ArchiveStats = field(default_factory=ArchiveStats)
    consumer: AIOKafkaConsumer | None = None

    def __post_init__(self) -> None:
        self.group = self.group or f"{self.config.group}-archive"
        self._rolls: dict[TopicPartition, Roll] = {}
        self._queue: deque[tuple[TopicPartition, Sealed]] = deque()
        self._owned: dict[TopicPartition, int] = {}
        self._epoch = 0
        self._progress: dict[TopicPartition, Progress] = {}
        self._unresolved: set[TopicPartition] = set()
        self._redo: dict[TopicPartition, int] = {}
        self._full = False
        self._stopping = False
        self._wake = asyncio.Event()

    # ---- main loop
    async def run(self) -> None:
        c = self.config
        self.consumer = group_consumer(c, self.group)
        self.consumer.subscribe(list(c.source_topics), listener=_Rebalance(self))
        await self.consumer.start()
        log.info("archiver: group %s, topics %s -> %s (roll %d B / %ss)", self.group,
                 ",".join(c.source_topics), self.store.url, c.archive_roll_bytes,
                 c.archive_roll_seconds)
        uploader = asyncio.create_task(self._upload_loop())
        try:
            while not self._stopping:
                batch = await kafka_columns.fetch(self.consumer, c.batch_wait, c.batch_size)
                for tp, records in batch.items():
                    if tp in self._owned and tp not in self._unresolved:
                        await self._add(tp, records)
                await self._seal_due()
                self._apply_pause()
                if uploader.done():
                    uploader.result()  # surface a crash of the uploader
        finally:
            await self._drain(uploader)
            await self.consumer.stop()
            await self.store.close()

    def stop(self) -> None:
        self._stopping = True

    async def _add(self, tp: TopicPartition, records: MessageBatch) -> None:
        while len(records):
            roll = self._rolls.get(tp)
            if roll is None:
                roll = self._rolls[tp] = Roll(self.config.utility_of(tp.topic), tp.topic,
                                              tp.partition, until=self._redo.pop(tp, None),
                                              epoch=self._owned[tp],
                                              rules=Rules.from_config(self.config))
            if roll.until is None or records.offset[-1] <= roll.until:
                roll.extend(records)
                return
            # the redo ends exactly at `until`; what follows is a new roll
            cut = int(np.searchsorted(records.offset, roll.until, side="right"))
            roll.extend(records.slice(0, cut))
            records = records.slice(cut, len(records))
            await self._seal(tp)

    async def _seal_due(self) -> None:
        now = time.monotonic()
        c = self.config
        for tp in [tp for tp, r in self._rolls.items()
                   if r.due(c.archive_roll_bytes, c.archive_roll_seconds, now)]:
            await self._seal(tp)

    async def _seal(self, tp: TopicPartition) -> None:
        roll = self._rolls.pop(tp, None)
        if roll is None or not len(roll):
            return
        sealed = await asyncio.to_thread(roll.seal)   # decode + Parquet off the event loop
        self._queue.append((tp, sealed))
        self._wake.set()

    @property
    def buffered_bytes(self) -> int:
        return sum(r.nbytes for r in self._rolls.values()) + \
            sum(s.nbytes for _, s in self._queue)

    def _apply_pause(self) -> None:
        bound = self.config.archive_buffer_bytes
        buffered = self.buffered_bytes
        if not self._full and buffered >= bound:
            self._full = True
            self.stats.pauses += 1
            log.warning("archiver: %d bytes buffered (bound %d): pausing consumption until "
                        "uploads catch up", buffered, bound)
        elif self._full and buffered <= bound // 2:
            self._full = False
            log.info("archiver: buffer down to %d bytes: resuming", buffered)
        want = set(self._owned) if self._full else set(self._unresolved)
        have = self.consumer.paused()
        if want - have:
            self.consumer.pause(*(want - have))
        if (have - want) & set(self._owned):
            self.consumer.resume(*((have - want) & set(self._owned)))

    # ---- uploads
    async def _upload_loop(self) -> None:
        failures = 0
        while True:
            if not self._queue:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), 0.5)
                except TimeoutError:
                    pass
                continue
            tp, sealed = self._queue[0]
            if self._owned.get(tp) != sealed.epoch:
                self._queue.popleft()    # revoked: the new owner reads it again from Kafka
                continue
            try:
                await self._commit(tp, sealed)
            except StoreUnavailable as exc:
                failures += 1
                self.stats.failed_attempts += 1
                delay = min(self.config.archive_retry_max, 0.5 * 2 ** min(failures - 1, 10))
                log.warning("archiver: upload of %s-%d %d..%d failed (%s); retry %d in %.1fs, "
                            "%d bytes buffered", tp.topic, tp.partition, sealed.first,
                            sealed.last, exc, failures, delay, self.buffered_bytes)
                await asyncio.sleep(delay)
                continue
            failures = 0
            if self._queue and self._queue[0][1] is sealed:
                self._queue.popleft()

    async def _commit(self, tp: TopicPartition, sealed: Sealed) -> None:
        key = layout.progress_key(tp.topic, tp.partition)
        before = self._progress.get(tp) or Progress(sealed.first)
        pending = Progress(before.next_offset, before.high, (sealed.first, sealed.last))
        await self.store.put(key, pending.to_bytes())
        await asyncio.gather(*(self.store.put(k, data) for k, data in sealed.objects))
        after = before.after(sealed)
        await self.store.put(key, after.to_bytes())
        self._progress[tp] = after
        self.stats.rows += sealed.rows
        self.stats.quarantined += sealed.quarantined
        self.stats.rolls += 1
        self.stats.objects += len(sealed.objects)
        log.info("archived %s-%d %d..%d: %d rows, %d quarantined, %d objects", tp.topic,
                 tp.partition, sealed.first, sealed.last, sealed.rows, sealed.quarantined,
                 len(sealed.objects))
        try:   # for lag tools only; the progress object is what a restart trusts
            await self.consumer.commit({tp: sealed.last + 1})
        except Exception as exc:  # noqa: BLE001 - rebalancing or no longer ours
            log.info("archiver: Kafka commit for %s skipped (%s)", tp, exc)

    async def _drain(self, uploader: asyncio.Task, timeout: float = DRAIN_SECONDS) -> None:
        """Graceful stop: upload what is buffered if S3 answers soon; Kafka keeps the rest."""
        for tp in list(self._rolls):
            await self._seal(tp)
        deadline = time.monotonic() + timeout
        while self._queue and time.monotonic() < deadline and not uploader.done():
            await asyncio.sleep(0.1)
        uploader.cancel()
        try:
            await uploader
        except (asyncio.CancelledError, Exception):  # noqa: BLE001
            pass

    # ---- ownership
    def on_revoked(self, revoked: set[TopicPartition]) -> None:
        for tp in revoked:
            self._owned.pop(tp, None)
            self._rolls.pop(tp, None)
            self._unresolved.discard(tp)
            self._redo.pop(tp, None)

    def on_assigned(self, assigned: set[TopicPartition]) -> None:
        for tp in assigned:
            self._epoch += 1
            self._owned[tp] = self._epoch
            self._unresolved.add(tp)
            self._rolls.pop(tp, None)
        if assigned:
            self.consumer.pause(*assigned)
            for tp in assigned:
                asyncio.ensure_future(self._resolve(tp, self._owned[tp]))

    async def _resolve(self, tp: TopicPartition, epoch: int) -> None:
        """Where to start: the progress object (redo a pending roll first), else Kafka."""
        failures = 0
        while self._owned.get(tp) == epoch:
            try:
                data = await self.store.get(layout.progress_key(tp.topic, tp.partition))
                break
            except StoreUnavailable as exc:
                failures += 1
                delay = min(self.config.archive_retry_max, 0.5 * 2 ** min(failures - 1, 10))
                log.warning("archiver: cannot read progress of %s (%s); retry in %.1fs",
                            tp, exc, delay)
                await asyncio.sleep(delay)
        if self._owned.get(tp) != epoch:
            return
        if data is not None:
            progress = Progress.from_bytes(data)
            start = progress.next_offset
            if progress.pending:
                start = progress.pending[0]
                self._redo[tp] = progress.pending[1]
            self.consumer.seek(tp, start)
        else:
            progress = None
            committed = await self.consumer.committed(tp)
            if committed is not None:
                self.consumer.seek(tp, committed)
            else:
                await self.consumer.seek_to_beginning(tp)
            start = committed if committed is not None else 0
        self._progress[tp] = progress or Progress(start)
        self._unresolved.discard(tp)
        log.info("archiver: %s-%d starts at offset %d%s", tp.topic, tp.partition, start,
                 f" (redo of pending roll up to {self._redo[tp]})" if tp in self._redo else "")


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, archiver: Archiver) -> None:
        self.archiver = archiver

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.archiver.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.archiver.on_assigned(assigned)
