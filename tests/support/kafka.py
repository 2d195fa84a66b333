"""The tests' Kafka producer: idempotent, so it never reorders a partition.

A test's truth is its lines in the order it sent them. A plain producer retries a batch
the broker refused (a partition it does not lead yet, right after the topic was
created) after the batches sent behind it have landed: the partition then holds them in
another order, and the test, not the engine, is wrong. Seen once in CI: water-3 held its
last 58 readings at offsets 0-57, so the archive a test built from its own list claimed
offsets Kafka held other readings at.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import Producer

from auth_kappa import kafka_clients
from auth_kappa.config import Config


def producer(kafka: Config | str, **settings: Any) -> Producer:
    """`kafka`: the config (its security settings too) or a bootstrap address."""
    base = kafka_clients.librdkafka(kafka) if isinstance(kafka, Config) \
        else {"bootstrap.servers": kafka}
    return Producer({**base, "enable.idempotence": True, **settings})
