"""Kafka into a LiveRuntime: the one consumption loop step, for the live worker
(runtime/kafka_source.py, in a consumer group) and a rebuild's catch-up
(replay/catchup.py, every partition assigned by hand).

A fetch becomes columns (MessageBatch), keeps only what the runtime owns from its own
position on, and goes to LiveRuntime.process one topic at a time. Where a partition
starts (a checkpoint, else its log start) and when it is caught up are decided here too,
so both callers agree on what "read up to the end" means.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from auth_kappa import kafka_columns
from auth_kappa.config import Config
from auth_kappa.runtime.live import LiveRuntime
from auth_kappa.topology.decode import MessageBatch

if TYPE_CHECKING:
    from auth_kappa.runtime.confluent_consumer import ConfluentConsumer

log = logging.getLogger("auth_kappa.source")
Fetch = dict[TopicPartition, MessageBatch]
# message bytes a worker feeds the runtime between two turns of its event loop: a fetch
# of frames holds up to ~1M readings (seconds of CPU on a busy machine), and the group's
# heartbeats must go out meanwhile
FEED_BYTES = 4 * 1024 * 1024


def fetch_parts(batch: Fetch, budget: int = FEED_BYTES) -> list[Fetch]:
    """A fetch cut into parts of about `budget` bytes of message values (at least one
    record each), each partition's records in order across the parts."""
    parts: list[Fetch] = []
    part: Fetch = {}
    room = budget
    for tp, records in batch.items():
        values = records.values
        sizes = np.fromiter(map(len, values) if None not in values else
                            (len(v or b"") for v in values), np.int64, len(values))
        ends = np.cumsum(sizes)
        lo = 0
        while lo < len(values):
            base = ends[lo - 1] if lo else 0
            hi = max(lo + 1, int(np.searchsorted(ends, base + room, side="right")))
            hi = min(hi, len(values))
            part[tp] = records if (lo, hi) == (0, len(values)) else records.slice(lo, hi)
            room -= int(ends[hi - 1] - base)
            lo = hi
            if room <= 0 or lo < len(values):   # full: the next record would not fit
                parts.append(part)
                part, room = {}, budget
    if part:
        parts.append(part)
    return parts


@dataclass
class KafkaReader:
    config: Config
    runtime: LiveRuntime
    consumer: AIOKafkaConsumer | ConfluentConsumer

    def __post_init__(self) -> None:
        self.runtime.topology.caught_up = self.caught_up   # what the watermark asks

    def caught_up(self, utility: str, partition: object) -> bool:
        """No unread messages: what the watermark needs before calling a partition idle.
        A partition that never had a message is caught up once its end is known."""
        tp = TopicPartition(self.config.prefixed(utility), int(partition))
        high = self.consumer.highwater(tp)
        nxt = self.runtime.next_offset(utility, int(partition))
        return high is not None and nxt is not None and nxt >= high

    async def fetch(self, wait: float) -> Fetch:
        if isinstance(self.consumer, AIOKafkaConsumer):
            return await kafka_columns.fetch(self.consumer, wait, self.config.batch_size)
        return await self.consumer.getmany(timeout_ms=int(wait * 1000),
                                           max_records=self.config.batch_size)

    def feed(self, batch: Fetch, stop_at: dict[TopicPartition, int] | None = None) -> int:
        """A fetch through the runtime, one topic at a time; returns the messages fed.
        stop_at: read no offset at or past it (a catch-up closing the gap exactly)."""
        by_topic: dict[str, list[MessageBatch]] = {}
        for tp, records in batch.items():
            mine = self._ours(tp, records, None if stop_at is None else stop_at.get(tp))
            if len(mine):
                by_topic.setdefault(tp.topic, []).append(mine)
        n = 0
        for topic, parts in by_topic.items():
            messages = MessageBatch.concat(parts)
            self.runtime.process(self.config.utility_of(topic), messages)
            n += len(messages)
        return n

    def _ours(self, tp: TopicPartition, columns: MessageBatch, stop: int | None
              ) -> MessageBatch | list:
        """Only records of a partition the runtime holds, from its own position on. A fetch
        can return records from before an assignment's seek (from the log start, say):
        they are already counted, and their clock is behind ours."""
        utility = self.config.utility_of(tp.topic)
        if not self.runtime.owns(utility, tp.partition) or not len(columns):
            return []
        nxt = self.runtime.next_offset(utility, tp.partition)
        low = columns.offset[0] if nxt is None else nxt
        if columns.offset[0] >= low and (stop is None or columns.offset[-1] < stop):
            return columns
        keep = columns.offset >= low
        if stop is not None:
            keep &= columns.offset < stop
        return columns.take(np.flatnonzero(keep))

    def reached(self, stop_at: dict[TopicPartition, int]) -> bool:
        """Every partition read up to its stop offset."""
        return all((self.runtime.next_offset(self.config.utility_of(tp.topic), tp.partition)
                    or 0) >= at for tp, at in stop_at.items())

    async def lag(self, tps: list[TopicPartition]) -> int:
        """Messages between the consumer's positions and the partitions' ends, now."""
        ends = await self.consumer.end_offsets(tps)
        return sum([max(0, ends[tp] - await self.consumer.position(tp)) for tp in tps])

    async def seek(self, tps: set[TopicPartition] | list[TopicPartition],
                   seek: dict[tuple[str, int], int]) -> None:
        """Each partition to its committed offset; one with no checkpoint yet to its log
        start, told to the runtime, so an empty partition counts as caught up."""
        fresh = [tp for tp in tps if (self.config.utility_of(tp.topic), tp.partition)
                 not in seek]
        if fresh:
            try:
                starts = await self.consumer.beginning_offsets(fresh)
            except KafkaError as exc:
                log.warning("log start of %s unknown (%s): empty ones will not count as "
                            "caught up until they get a message", fresh, exc)
                starts = {}
            for tp, offset in starts.items():
                self.runtime.start_at(self.config.utility_of(tp.topic), tp.partition, offset)
                self.consumer.seek(tp, offset)
        for (utility, partition), offset in seek.items():
            self.consumer.seek(TopicPartition(self.config.prefixed(utility), partition), offset)

