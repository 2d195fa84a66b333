"""AUTH_CONSUMER=auto on the real broker: the newest messages of each partition are
sampled, and frames-sized messages pick librdkafka, single readings aiokafka; new topics
(nothing to sample) and an explicit choice are left as they are."""

from __future__ import annotations

import pytest

from auth_kappa.config import Config
from auth_kappa.kafka_admin import delete_topics, ensure_topics
from auth_kappa.runtime import consumer_choice
from tests.support.kafka import producer as ordered_producer

pytestmark = pytest.mark.stack


@pytest.fixture
def topics(stack, unique):
    c = Config.load(env={"AUTH_TOPIC_PREFIX": f"cc{unique}-", "AUTH_GROUP": f"cc{unique}",
                         "AUTH_PARTITIONS": "2"})
    ensure_topics(c.kafka, c.source_topics, 2)
    yield c
    delete_topics(c.kafka, c.source_topics)


def _produce(config: Config, size: int, per_partition: int, first: bytes = b"") -> None:
    producer = ordered_producer(config)
    for topic in config.source_topics:
        for p in (0, 1):
            for i in range(per_partition):
                value = (first if i == 0 else b"") or bytes([48 + i % 10]) * size
                producer.produce(topic, value, partition=p)
    assert producer.flush(30) == 0


def test_new_topics_read_with_aiokafka(topics):
    assert consumer_choice.sample_sizes(topics) == []
    assert consumer_choice.choose(topics) == "aiokafka"


def test_single_readings_pick_aiokafka_and_only_the_newest_are_sampled(topics):
    # each partition's oldest message is huge: outside the newest SAMPLE, it must not count
    _produce(topics, 120, consumer_choice.SAMPLE + 5, first=b"x" * 200_000)
    sizes = consumer_choice.sample_sizes(topics)
    assert sizes == [120] * (3 * 2 * consumer_choice.SAMPLE)
    assert consumer_choice.choose(topics) == "aiokafka"


def test_frames_pick_librdkafka_unless_told_otherwise(topics):
    _produce(topics, 35_000, 3)
    assert sorted(consumer_choice.sample_sizes(topics)) == [35_000] * (3 * 2 * 3)
    assert consumer_choice.choose(topics) == "confluent"
    told = Config.load(env={"AUTH_TOPIC_PREFIX": topics.topic_prefix, "AUTH_CONSUMER": "aiokafka"})
    assert consumer_choice.choose(told) == "aiokafka"


def test_a_partition_without_a_leader_is_not_sampled(topics, caplog):
    """A topic created a moment ago answers NOT_LEADER_FOR_PARTITION until its election
    ends (seen once in CI): such a partition is retried until the timeout, then skipped.
    A partition that does not exist stands in for one whose leader never comes."""
    import time

    from confluent_kafka import Consumer, TopicPartition

    from auth_kappa import kafka_clients

    consumer = Consumer({**kafka_clients.librdkafka(topics), "group.id": "cc-probe"})
    try:
        caplog.set_level("INFO", logger="auth_kappa.source")
        topic = topics.source_topics[0]
        assert consumer_choice._watermarks(consumer, TopicPartition(topic, 0),
                                           time.monotonic() + 5.0) == (0, 0)
        assert consumer_choice._watermarks(consumer, TopicPartition(topic, 99),
                                           time.monotonic() + 0.5) is None
        assert f"{topic}[99] not sampled" in caplog.text
    finally:
        consumer.close()
