"""The librdkafka consumer (AUTH_CONSUMER=confluent) keeps the aiokafka semantics the live
source relies on, on the real broker: an assignment starts exactly at the offsets the
listener sought, a seek outside a rebalance re-reads from there, a paused partition gives
nothing until resumed (also when it was sought while paused: librdkafka keeps a pause across
a new assignment), every record arrives once and in order with its offset."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import TopicPartition

from auth_kappa.config import Config
from auth_kappa.kafka_admin import delete_topics, ensure_topics
from auth_kappa.runtime.confluent_consumer import ConfluentConsumer, group_settings
from tests.support.kafka import producer as ordered_producer

pytestmark = pytest.mark.stack
PER_PARTITION = 300


def _produce(config: Config, topic: str, partition: int, first: int, count: int) -> None:
    producer = ordered_producer(config)
    for i in range(first, first + count):
        producer.produce(topic, f"{partition}:{i}".encode(), partition=partition)
    assert producer.flush(30) == 0


class _Seeks:
    """The listener: on assignment, seek each partition to a chosen offset (as the source
    seeks to the offsets committed in Redis)."""

    def __init__(self, consumer: ConfluentConsumer, start: dict[int, int]) -> None:
        self.consumer, self.start, self.assigned = consumer, start, []

    async def on_partitions_assigned(self, tps: set[TopicPartition]) -> None:
        self.assigned.append(sorted(tps))
        for tp in tps:
            self.consumer.seek(tp, self.start[tp.partition])

    async def on_partitions_revoked(self, tps: set[TopicPartition]) -> None:
        pass


async def _read(consumer: ConfluentConsumer, want: int, seconds: float = 30.0
                ) -> dict[int, list[tuple[int, bytes]]]:
    got: dict[int, list[tuple[int, bytes]]] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while sum(map(len, got.values())) < want and loop.time() < deadline:
        for tp, batch in (await consumer.getmany(timeout_ms=200, max_records=1000)).items():
            got.setdefault(tp.partition, []).extend(
                zip(batch.offset.tolist(), batch.values, strict=True))
    return got


def _on_two_partitions(stack: Config, topic: str, scenario) -> None:
    """`scenario(topic)` run on a fresh topic of 2 partitions, PER_PARTITION records each."""
    ensure_topics(stack.kafka, [topic], 2)
    try:
        for p in (0, 1):
            _produce(stack, topic, p, 0, PER_PARTITION)
        asyncio.run(scenario(topic))
    finally:
        delete_topics(stack.kafka, [topic])


def test_assignment_seek_pause_and_resume_keep_aiokafka_semantics(stack, unique):
    _on_two_partitions(stack, f"cc-{unique}", lambda t: _scenario(stack, t, unique))


async def _scenario(stack: Config, topic: str, unique: str) -> None:
    consumer = ConfluentConsumer(group_settings(stack, f"cc-{unique}"))
    listener = _Seeks(consumer, {0: 100, 1: 250})
    consumer.subscribe([topic], listener)
    await consumer.start()
    try:
        tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
        got = await _read(consumer, 200 + 50)
        assert listener.assigned == [[tp0, tp1]]
        for p, first in ((0, 100), (1, 250)):   # from the sought offset, once, in order
            assert got[p] == [(o, f"{p}:{o}".encode()) for o in range(first, PER_PARTITION)]
        assert consumer.partitions_for_topic(topic) == {0, 1}
        assert consumer.highwater(tp0) == PER_PARTITION

        consumer.seek(tp0, 10)                  # outside a rebalance: read again from 10
        consumer.pause(tp1)
        _produce(stack, topic, 1, PER_PARTITION, 5)
        got = await _read(consumer, PER_PARTITION - 10, seconds=10)
        assert got.get(0) == [(o, f"0:{o}".encode()) for o in range(10, PER_PARTITION)]
        assert await _read(consumer, 1, seconds=2) == {}   # tp1 paused: nothing

        consumer.resume(tp1)
        got = await _read(consumer, 5)
        assert got == {1: [(o, f"1:{o}".encode())
                           for o in range(PER_PARTITION, PER_PARTITION + 5)]}
        consumer.pause(tp0)        # as the source's recovery: pause, then seek and resume
        assert await _read(consumer, 1, seconds=1) == {}
        _produce(stack, topic, 0, PER_PARTITION, 3)
        consumer.seek(tp0, PER_PARTITION - 5)
        consumer.resume(tp0)
        got = await _read(consumer, 8)
        assert got == {0: [(o, f"0:{o}".encode())
                           for o in range(PER_PARTITION - 5, PER_PARTITION + 3)]}
        starts = await consumer.beginning_offsets([tp0, tp1])
        assert starts == {tp0: 0, tp1: 0}
    finally:
        await consumer.stop()


def test_backlog_says_when_the_broker_holds_more_than_a_fetch_took(stack, unique):
    """The read-ahead waits for full batches only while catching up (BACKLOG_WAIT), and
    briefly once caught up (AHEAD_WAIT): the flag that picks the wait follows the broker."""
    _on_two_partitions(stack, f"cb-{unique}", lambda t: _backlog_scenario(stack, t, unique))


async def _backlog_scenario(stack: Config, topic: str, unique: str) -> None:
    consumer = ConfluentConsumer(group_settings(stack, f"cb-{unique}"))
    consumer.subscribe([topic], _Seeks(consumer, {0: 0, 1: 0}))
    await consumer.start()
    try:
        seen, flags = 0, []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while seen < 2 * PER_PARTITION and loop.time() < deadline:
            got = await consumer.getmany(timeout_ms=200, max_records=100)
            if got:
                seen += sum(len(b.offset) for b in got.values())
                flags.append(consumer.backlog)
        assert seen == 2 * PER_PARTITION
        assert flags[0] and not flags[-1], flags   # catching up first, caught up last
        assert await consumer.getmany(timeout_ms=200, max_records=100) == {}
        assert not consumer.backlog
    finally:
        await consumer.stop()
