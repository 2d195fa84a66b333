"""AUTH_CONSUMER=auto (the default): the Kafka client that reads these topics faster.

Measured on one worker (benchmarks/README.md): aiokafka reads record batches straight
into columns, so one small reading per message is fastest there (librdkafka's consume()
makes a Python object per message: about a third slower); on frames of 500 readings
(~35 KB a message) librdkafka's own threads fetch the bytes while aiokafka copies them
through asyncio's streams in the worker's thread (librdkafka 24-36 % faster). The
crossover is near 1 KiB a message. So the worker samples the newest messages of its
topics when it starts and picks; with nothing to sample (new topics), aiokafka.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import Consumer, KafkaException
from confluent_kafka import TopicPartition as Partition

from auth_kappa import kafka_clients
from auth_kappa.config import Config

log = logging.getLogger("auth_kappa.source")
FRAME_BYTES = 1024    # mean message size from which librdkafka reads faster
SAMPLE = 20           # newest messages per partition


def sample_sizes(config: Config, timeout: float = 5.0) -> list[int]:
    """Value sizes of the newest SAMPLE messages of each source partition (fewer if the
    partition holds fewer, or if the broker does not answer within `timeout`)."""
    consumer = Consumer({**kafka_clients.librdkafka(config), "group.id": f"{config.group}-probe",
                         "enable.auto.commit": False, "enable.partition.eof": False})
    try:
        topics = consumer.list_topics(timeout=timeout).topics
        starts, want = [], 0
        marks_by = time.monotonic() + timeout   # for every partition's watermarks together
        for name in config.source_topics:
            meta = topics.get(name)
            if meta is None or meta.error is not None:
                continue
            for p in meta.partitions:
                marks = _watermarks(consumer, Partition(name, p), marks_by)
                if marks is None:
                    continue
                low, high = marks
                start = max(low, high - SAMPLE)
                if high > start:
                    starts.append(Partition(name, p, start))
                    want += high - start
        if not starts:
            return []
        consumer.assign(starts)
        sizes: list[int] = []
        deadline = time.monotonic() + timeout
        while len(sizes) < want and time.monotonic() < deadline:
            for m in consumer.consume(min(500, want - len(sizes)), timeout=0.2):
                if m.error() is None:
                    sizes.append(len(m.value() or b""))
        return sizes
    finally:
        consumer.close()


def _watermarks(consumer: Consumer, partition: Partition, deadline: float
                ) -> tuple[int, int] | None:
    """(low, high) of a partition, or None when it has no leader by `deadline` (monotonic):
    a topic created a moment ago (NOT_LEADER_FOR_PARTITION until its election ends) has
    nothing to sample anyway. One deadline for all partitions bounds a worker's start."""
    while True:
        try:
            return consumer.get_watermark_offsets(
                partition, timeout=max(0.1, deadline - time.monotonic()))
        except KafkaException as exc:
            if time.monotonic() >= deadline:
                log.info("consumer: %s[%d] not sampled (%s)", partition.topic,
                         partition.partition, exc.args[0].str() if exc.args else exc)
                return None
            time.sleep(0.1)


def choose(config: Config) -> str:
    """"aiokafka" or "confluent": the configured one, or for "auto" by the sampled sizes."""
    if config.consumer != "auto":
        return config.consumer
    try:
        sizes = sample_sizes(config)
    except Exception as exc:  # noqa: BLE001 - a probe failure must not stop the worker
        log.warning("consumer: could not sample message sizes (%s): aiokafka", exc)
        return "aiokafka"
    mean = sum(sizes) / len(sizes) if sizes else 0.0
    pick = "confluent" if sizes and mean >= FRAME_BYTES else "aiokafka"
    log.info("consumer: %s (AUTH_CONSUMER=auto; %s)", pick,
             f"{len(sizes)} newest messages average {mean:,.0f} bytes, librdkafka from "
             f"{FRAME_BYTES}" if sizes else "no messages to sample yet")
    return pick
