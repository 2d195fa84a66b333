"""aiokafka's prefetched fetches as columns, without a ConsumerRecord per message.

`AIOKafkaConsumer.getmany` turns every record into a ConsumerRecord (a namedtuple with
headers, sizes and a checksum) in a Python generator: ~3.3 µs of the event loop per
message here, a third of a single-reading worker's CPU. The fetcher already holds each
partition's fetch as record batches (aiokafka's Cython MemoryRecords), so this module
drains those batches straight into a MessageBatch (~0.7 µs per message), keeping
everything else of aiokafka: the group, the prefetch, positions, pauses and seeks.

It reads aiokafka's fetcher internals, the same steps as `Fetcher.fetched_records`
(tested against aiokafka 0.14; `usable` checks the shapes it needs, and `fetch` falls
back to getmany without them, saying so once). Differences from getmany: whole record
batches are taken, so a fetch may exceed max_records by up to one batch, and only the
value, offset and timestamp of a record are kept (the runtime and the archiver read
nothing else).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np
from aiokafka import TopicPartition
from aiokafka.errors import ConsumerStoppedError, CorruptRecordException

from auth_kappa.topology.decode import MessageBatch

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer

try:
    from aiokafka.consumer.fetcher import READ_COMMITTED, FetchResult, PartitionRecords
except ImportError:           # a future aiokafka that moved them: getmany is used instead
    FetchResult = PartitionRecords = None  # type: ignore[assignment,misc]
    READ_COMMITTED = 1

log = logging.getLogger("auth_kappa.kafka")
_FETCHER = ("_records", "_notify", "_create_fetch_waiter", "_wait_consume_future",
            "_subscriptions", "_closed")
_warned = False


def usable(consumer: AIOKafkaConsumer) -> bool:
    """Whether this aiokafka has the fetcher this module drains (after consumer.start)."""
    fetcher = getattr(consumer, "_fetcher", None)
    return (FetchResult is not None and fetcher is not None
            and all(hasattr(fetcher, name) for name in _FETCHER)
            and all(hasattr(PartitionRecords, name) for name in
                    ("_consume_aborted_up_to", "_contains_abort_marker")))


async def fetch(consumer: AIOKafkaConsumer, timeout: float, max_records: int
                ) -> dict[TopicPartition, MessageBatch]:
    """One fetch as columns: fetch_columns where this aiokafka allows it, else getmany."""
    global _warned
    if usable(consumer):
        return await fetch_columns(consumer, timeout, max_records)
    if not _warned:
        _warned = True
        log.warning("this aiokafka's fetcher is not the one auth_kappa/kafka_columns.py "
                    "reads: using getmany (slower per message)")
    got = await consumer.getmany(timeout_ms=int(timeout * 1000), max_records=max_records)
    return {tp: _columns(tp.partition, [r.value for r in records],
                         [r.offset for r in records], [r.timestamp or 0 for r in records])
            for tp, records in got.items() if records}


async def fetch_columns(consumer: AIOKafkaConsumer, timeout: float, max_records: int
                        ) -> dict[TopicPartition, MessageBatch]:
    """What getmany(timeout_ms, max_records) would return, as one MessageBatch per
    partition; waits up to `timeout` seconds when nothing is prefetched."""
    if consumer._closed:
        raise ConsumerStoppedError()
    consumer._coordinator.check_errors()
    with consumer._subscription.fetch_context():
        return await _drained(consumer._fetcher, timeout, max_records)


async def _drained(fetcher: Any, timeout: float, budget: int
                   ) -> dict[TopicPartition, MessageBatch]:
    while True:
        subscriptions = fetcher._subscriptions
        if subscriptions.reassignment_in_progress:   # records may not be ours after it
            await subscriptions.wait_for_assignment()
        start = time.monotonic()
        out: dict[TopicPartition, MessageBatch] = {}
        for tp in list(fetcher._records):
            result = fetcher._records[tp]
            if type(result) is not FetchResult:       # a FetchError: raised once, alone
                if out:
                    return out
                del fetcher._records[tp]
                fetcher._notify(fetcher._wait_consume_future)
                result.check_raise()
            try:
                columns = _take(tp, result, budget)
            finally:
                if not result.has_more():            # all read: the prefetch may go on
                    del fetcher._records[tp]
                    fetcher._notify(fetcher._wait_consume_future)
            if columns is not None:
                out[tp] = columns
                budget -= len(columns)
                if budget <= 0:
                    break
        if out or timeout <= 0:
            return out
        waiter = fetcher._create_fetch_waiter()
        done, pending = await asyncio.wait([waiter], timeout=timeout)
        if not done or fetcher._closed:
            for fut in pending:
                fut.cancel()
            return {}
        waiter.result()                              # authorization errors
        timeout = max(0.0, timeout - (time.monotonic() - start))


def _take(tp: TopicPartition, result: Any, budget: int) -> MessageBatch | None:
    """Whole record batches of one partition's fetch, up to `budget` records; moves the
    consumer's position past them (as FetchResult.getall does)."""
    if not result.check_assignment(tp) or not result.has_more():
        return None
    part: Any = result._partition_records
    values: list[bytes] = []
    offsets: list[int] = []
    stamps: list[int] = []
    records = part._records
    while records.has_next():
        batch = records.next_batch()
        if part._check_crcs and not batch.validate_crc():
            result._update_position()           # up to the last good batch; the rest
            result._partition_records = None   # is fetched again from there
            if values:
                return _columns(tp.partition, values, offsets, stamps)
            raise CorruptRecordException(f"Invalid CRC - {tp}")
        if _skipped(part, batch):
            part.next_fetch_offset = batch.next_offset
            continue
        first = part.next_fetch_offset
        for record in batch:
            if record.offset >= first:     # a batch may start before the fetch offset
                values.append(record.value)
                offsets.append(record.offset)
                stamps.append(record.timestamp)
        part.next_fetch_offset = batch.next_offset
        if len(values) >= budget:
            break
    result._update_position()
    if not records.has_next():             # all taken: the partition may be fetched again
        result._partition_records = None
    return _columns(tp.partition, values, offsets, stamps)


def _skipped(part: Any, batch: Any) -> bool:
    """Control batches, and under read_committed the batches of aborted transactions:
    PartitionRecords._unpack_records' rule."""
    if part._isolation_level == READ_COMMITTED and \
            batch.producer_id is not None:
        part._consume_aborted_up_to(batch.base_offset)
        if batch.is_control_batch and part._contains_abort_marker(batch):
            part._aborted_producers.discard(batch.producer_id)
        if batch.is_transactional and batch.producer_id in part._aborted_producers:
            return True
    return bool(batch.is_control_batch)


def _columns(partition: int, values: list[bytes], offsets: list[int], stamps: list[int]
             ) -> MessageBatch | None:
    if not values:
        return None
    n = len(values)
    return MessageBatch(values, np.full(n, partition, np.int32), np.array(offsets, np.int64),
                        MessageBatch.seconds(stamps))
