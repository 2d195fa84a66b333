"""The Faust edge: `faust -A auth_kappa.app worker`. Lifecycle and Kafka here; logic elsewhere.

Faust gives us the consumer group, partition assignment and the worker process. Every
decision about windows, lateness, state and offsets is the LiveRuntime's. Faust's own
offset commits are switched off (acks=False on the source topics): the committed
position lives in Redis with the state, and we seek to it on every assignment.
"""

from __future__ import annotations

import logging
import os

import faust
from faust.types import TP

from auth_kappa.config import Config
from auth_kappa.kafka_admin import ensure_topics
from auth_kappa.runtime.live import LiveRuntime, Outputs
from auth_kappa.state.redis_store import RedisWindowStore
from auth_kappa.topology.decode import Message
from auth_kappa.topology.processor import Topology

log = logging.getLogger("auth_kappa.worker")

config = Config.load()
app = faust.App(
    os.environ.get("AUTH_GROUP", "auth-kappa"),
    broker=f"kafka://{config.kafka}",
    store="memory://",
    topic_partitions=config.partitions,
    value_serializer="raw",
    key_serializer="raw",
    web_enabled=False,
    stream_buffer_maxsize=int(os.environ.get("AUTH_BUFFER", "32768")),
    broker_max_poll_records=int(os.environ.get("AUTH_POLL_RECORDS", "5000")),
    consumer_auto_offset_reset="earliest",
    producer_linger_ms=20,
)
source = app.topic(*config.source_topics, value_type=bytes, key_type=bytes, acks=False)
outputs = Outputs(late=config.prefixed("late"), quarantine=config.prefixed("quarantine"),
                  windows=config.prefixed("windows"))
_pending: list[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]] = []
runtime = LiveRuntime(
    Topology(config.window_specs(), grace=config.grace, idle_timeout=config.idle_timeout),
    RedisWindowStore.connect(config.redis_url, config.namespace, config.window_specs(),
                             group=app.conf.id),
    emit=lambda *record: _pending.append(record),
    outputs=outputs,
    commit_interval=config.commit_interval,
)


async def _send_pending() -> None:
    while _pending:
        topic, key, value, headers = _pending.pop(0)
        await app.producer.send(topic, key, value, partition=None, timestamp=None,
                                headers=headers)


@app.on_partitions_assigned.connect
async def _on_assigned(app: faust.App, assigned: set[TP], **kwargs: object) -> None:
    ours = [(config.utility_of(tp.topic), tp.partition) for tp in assigned
            if tp.topic in config.source_topics]
    seek = runtime.assign(ours)
    for (utility, partition), offset in seek.items():
        await app.consumer.seek(TP(config.prefixed(utility), partition), offset)
    log.info("assigned %s; resuming from Redis offsets %s", sorted(ours), seek)


@app.on_partitions_revoked.connect
async def _on_revoked(app: faust.App, revoked: set[TP], **kwargs: object) -> None:
    runtime.checkpoint()
    await _send_pending()


@app.agent(source)
async def process(stream: faust.StreamT) -> None:
    async for events in stream.take_events(config.batch_size, within=config.batch_wait):
        by_topic: dict[str, list[Message]] = {}
        for e in events:
            m = e.message
            by_topic.setdefault(m.topic, []).append(Message(m.value, m.partition, m.offset))
        for topic, messages in by_topic.items():
            runtime.process(config.utility_of(topic), messages)
        await _send_pending()


@app.timer(1.0)
async def _tick() -> None:
    """Idle partitions still finalise windows, and quiet streams still checkpoint."""
    runtime.tick()
    await _send_pending()


@app.on_worker_init.connect
def _create_topics(app: faust.App, **kwargs: object) -> None:
    """Sources and side outputs exist before the first send (the broker may not auto-create)."""
    ensure_topics(config.kafka, [*config.source_topics, outputs.late, outputs.quarantine,
                                 outputs.windows], config.partitions)


@app.task
async def _announce() -> None:
    log.info("auth-kappa worker: topics %s, windows %s, grace %ss, redis %s (namespace %s)",
             ",".join(config.source_topics), [s.label for s in config.window_specs()], config.grace,
             config.redis_url, runtime.store.namespace)
