"""The columnar aiokafka fetch (runtime/kafka_columns.py) returns exactly what aiokafka's
own getmany returns, on the real broker: the same offsets, values and timestamps, from a
seek into the middle of a record batch, across control batches, without an aborted
transaction's records under read_committed, and nothing from a paused partition."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from confluent_kafka import Producer

from auth_kappa import kafka_clients, kafka_columns
from auth_kappa.config import Config
from auth_kappa.kafka_admin import delete_topics, ensure_topics
from tests.support.kafka import producer as ordered_producer

pytestmark = pytest.mark.stack
Rows = list[tuple[int, int, bytes, float]]     # partition, offset, value, timestamp (s)


def _produce(config: Config, topic: str, unique: str) -> None:
    """p0: plain messages in many small batches, a committed and an aborted transaction,
    more plain ones; p1: plain messages only."""
    plain = ordered_producer(config, **{"linger.ms": 5, "batch.num.messages": 37})
    for i in range(400):
        plain.produce(topic, f"p0-{i}".encode(), partition=0, timestamp=1_700_000_000_000 + i)
        plain.produce(topic, f"p1-{i}".encode(), partition=1)
        if i % 50 == 0:
            plain.flush(30)
    assert plain.flush(30) == 0
    txn = Producer({**kafka_clients.librdkafka(config), "transactional.id": f"t-{unique}"})
    txn.init_transactions(30)
    for label, commit in (("kept", True), ("aborted", False), ("kept2", True)):
        txn.begin_transaction()
        for i in range(60):
            txn.produce(topic, f"{label}-{i}".encode(), partition=0)
        txn.flush(30)
        (txn.commit_transaction if commit else txn.abort_transaction)(30)
    for i in range(30):
        plain.produce(topic, f"tail-{i}".encode(), partition=0)
    assert plain.flush(30) == 0


async def _read(config: Config, topic: str, columnar: bool, isolation: str,
                want: int) -> Rows:
    consumer = AIOKafkaConsumer(**kafka_clients.aiokafka(config), enable_auto_commit=False,
                                isolation_level=isolation)
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    consumer.assign([tp0, tp1])
    await consumer.start()
    rows: Rows = []
    try:
        assert kafka_columns.usable(consumer)
        for tp in (tp0, tp1):               # the start's offset reset done: it would
            await consumer.position(tp)     # otherwise race the seeks below
        consumer.seek(tp0, 137)              # inside a record batch of ~37
        consumer.seek(tp1, 0)
        deadline = time.monotonic() + 30
        while len(rows) < want and time.monotonic() < deadline:
            if columnar:
                got = await kafka_columns.fetch_columns(consumer, 0.2, 50)
                for tp, b in got.items():
                    rows += [(tp.partition, o, v, t) for o, v, t in
                             zip(b.offset.tolist(), b.values, b.timestamp.tolist(), strict=True)]
            else:
                got = await consumer.getmany(timeout_ms=200, max_records=50)
                for tp, recs in got.items():
                    rows += [(tp.partition, r.offset, r.value, r.timestamp / 1000)
                             for r in recs]
        await asyncio.sleep(0.5)             # nothing more comes
        extra = (await kafka_columns.fetch_columns(consumer, 0.3, 50) if columnar
                 else await consumer.getmany(timeout_ms=300))
        assert not extra
    finally:
        await consumer.stop()
    return rows


async def _paused(config: Config, topic: str) -> None:
    """A paused partition gives nothing, and carries on where it was when resumed."""
    consumer = AIOKafkaConsumer(**kafka_clients.aiokafka(config), enable_auto_commit=False,
                                auto_offset_reset="earliest")
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    consumer.assign([tp0, tp1])
    await consumer.start()
    try:
        consumer.pause(tp1)
        seen: dict[int, list[int]] = {0: [], 1: []}
        for _ in range(20):
            for tp, b in (await kafka_columns.fetch_columns(consumer, 0.2, 100)).items():
                seen[tp.partition] += b.offset.tolist()
        assert seen[1] == [] and seen[0]
        consumer.resume(tp1)
        for _ in range(20):
            for tp, b in (await kafka_columns.fetch_columns(consumer, 0.2, 1000)).items():
                seen[tp.partition] += b.offset.tolist()
        assert seen[1] == list(range(400))
    finally:
        await consumer.stop()


def test_columns_equal_getmany_from_mid_batch_seek_across_transactions(stack, unique):
    topic = f"cols-{unique}"
    ensure_topics(stack.kafka, [topic], 2, replication=1)
    try:
        _produce(stack, topic, unique)
        for isolation, p0_count in (("read_committed", 400 - 137 + 120 + 30),
                                    ("read_uncommitted", 400 - 137 + 180 + 30)):
            want = p0_count + 400
            ours = asyncio.run(_read(stack, topic, True, isolation, want))
            theirs = asyncio.run(_read(stack, topic, False, isolation, want))
            per = {name: {p: sum(r[0] == p for r in rows) for p in (0, 1)}
                   for name, rows in (("ours", ours), ("theirs", theirs))}
            assert len(ours) == want, (isolation, per)   # a one-off: p0 none in 30 s
            assert sorted(ours) == sorted(theirs), isolation
            p0 = [v for p, _, v, _ in sorted(ours) if p == 0]
            sent = [f"p0-{i}" for i in range(137, 400)] + [
                f"{label}-{i}" for label in ("kept", "aborted", "kept2")
                if label != "aborted" or isolation == "read_uncommitted"
                for i in range(60)] + [f"tail-{i}" for i in range(30)]
            assert p0 == [v.encode() for v in sent], isolation
            stamps = [t for p, o, _, t in sorted(ours) if p == 0 and o < 400]
            assert np.allclose(stamps, [1_700_000_000 + i / 1000 for i in range(137, 400)])
        asyncio.run(_paused(stack, topic))
    finally:
        delete_topics(stack.kafka, [topic])
