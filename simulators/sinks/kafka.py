"""Kafka sink: topics electricity / gas / water, key = service_id, value = the message.

confluent-kafka (librdkafka) is the fastest way out of one Python process: produce()
only copies into librdkafka's queue, and batching, lz4 compression and the network
happen on its C threads. The loop below does nothing per message except that call;
delivery reports are requested for failures only, so successes cost no Python call.
The murmur2 partitioner matches the Java client and aiokafka, so every producer in the
project puts a given service_id on the same partition.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

import numpy as np

from auth_kappa.config import UTILITIES
from auth_kappa.errors import ServiceUnavailable, UserError
from simulators.faults import Emission
from simulators.stream import Simulation

COMPRESSIONS = ("none", "lz4", "zstd", "snappy", "gzip")
_quiet = logging.getLogger("simulators.kafka.librdkafka")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


def unreachable(bootstrap: str) -> ServiceUnavailable:
    return ServiceUnavailable(f"cannot reach Kafka at {bootstrap} — run `auth-kappa stack up` "
                              "or set AUTH_KAFKA (or pass --kafka HOST:PORT)")


def check_reachable(bootstrap: str, timeout: float = 5.0) -> None:
    """Fail fast with one line instead of librdkafka retrying forever."""
    first = bootstrap.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port or 9092)), timeout=timeout):
            pass
    except (OSError, ValueError):
        raise unreachable(bootstrap) from None
    from confluent_kafka import KafkaException, Producer

    probe = Producer({"bootstrap.servers": bootstrap, "logger": _quiet})
    try:
        probe.list_topics(timeout=timeout)
    except KafkaException:
        raise unreachable(bootstrap) from None


class KafkaSink:
    """Produces every message with one produce() call; counts and reports delivery errors."""

    def __init__(self, bootstrap: str, topic_prefix: str = "", partitions: int = 4,
                 compression: str = "lz4", linger_ms: int = 20, acks: str = "all",
                 flush_timeout: float = 120.0) -> None:
        if compression not in COMPRESSIONS:
            raise UserError(f"--compression {compression!r}: choose one of {', '.join(COMPRESSIONS)}")
        self.bootstrap = bootstrap
        self.topics = {u: f"{topic_prefix}{u}" for u in UTILITIES}
        self.partitions = partitions
        self.flush_timeout = flush_timeout
        self.config = {
            "bootstrap.servers": bootstrap,
            "linger.ms": linger_ms,
            "batch.size": 1 << 20,
            "batch.num.messages": 100_000,
            "compression.type": compression,
            "queue.buffering.max.messages": 2_000_000,
            "queue.buffering.max.kbytes": 1 << 20,  # 1 GiB
            "acks": acks,
            "enable.idempotence": acks == "all",  # retries never duplicate or reorder
            "partitioner": "murmur2_random",
            # A message not acknowledged within a minute fails (and is counted) instead of
            # waiting for librdkafka's 5-minute default beyond our flush deadline.
            "message.timeout.ms": 60_000,
            "delivery.report.only.error": True,
            "on_delivery": self._on_delivery,
            "logger": _quiet,
        }
        self.produced = 0
        self.errors = 0
        self.first_error: str | None = None
        self._producer = None
        self._keys: np.ndarray | None = None

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.errors += 1
            if self.first_error is None:
                self.first_error = f"{msg.topic()}: {err.str()}"

    def open(self, sim: Simulation) -> None:
        if sim.format.name not in ("csv", "json"):
            raise UserError(f"--to kafka sends csv or json messages, not {sim.format.name}; "
                            "use --format csv or --format json")
        from confluent_kafka import Producer

        from auth_kappa.kafka_admin import ensure_topics

        check_reachable(self.bootstrap)
        ensure_topics(self.bootstrap, self.topics.values(), self.partitions, timeout=15.0)
        self._keys = np.empty(len(sim.registry), dtype=object)  # service_id bytes per meter
        self._keys[:] = sim.registry.service_id.cast("binary").to_pylist()
        self._producer = Producer(self.config)

    def write(self, emission: Emission) -> None:
        producer = self._producer
        produce = producer.produce
        topic = self.topics[emission.utility]
        values = emission.payload.to_pylist()
        keys = self._keys[emission.meter].tolist()
        for value, key in zip(values, keys, strict=True):
            try:
                produce(topic, value, key)
            except BufferError:  # local queue full: let librdkafka drain, then retry
                while True:
                    producer.poll(0.05)
                    try:
                        produce(topic, value, key)
                        break
                    except BufferError:
                        continue
        self.produced += len(values)
        producer.poll(0)

    def close(self) -> dict[str, Any]:
        undelivered = 0
        if self._producer is not None:
            deadline = time.monotonic() + self.flush_timeout
            while (undelivered := self._producer.flush(1.0)) and time.monotonic() < deadline:
                pass
        errors = self.errors + undelivered
        if undelivered and self.first_error is None:
            self.first_error = f"{undelivered} messages still queued after {self.flush_timeout:g}s"
        return {"to": "kafka", "bootstrap": self.bootstrap, "topics": self.topics,
                "compression": self.config["compression.type"], "produced": self.produced,
                "delivery_errors": errors, "first_error": self.first_error}
