"""The Faust edge: `faust -A auth_kappa.app worker`. Process lifecycle here; logic elsewhere.

Faust hosts the worker: start-up, signals, logging, the producer for side outputs,
and timers. The meter topics are read by KafkaSource (plain aiokafka `getmany` in the
same consumer group), because Faust's per-message stream path is ~50x slower.
Every decision about windows, lateness, state and offsets is the LiveRuntime's;
the committed position lives in Redis with the state and is sought on assignment.
"""

from __future__ import annotations

import logging
from pathlib import Path

import faust
from aiokafka import AIOKafkaProducer

from auth_kappa import kafka_clients
from auth_kappa.config import Config
from auth_kappa.kafka_admin import ensure_topics
from auth_kappa.runtime.kafka_source import KafkaSource
from auth_kappa.runtime.live import LiveRuntime, Outputs
from auth_kappa.state.redis_store import RedisWindowStore
from auth_kappa.topology.processor import Topology

log = logging.getLogger("auth_kappa.worker")

config = Config.load()
GROUP = config.group
FAUST_DIR = Path(config.cache_dir).resolve() / "faust"  # Faust makes <id>-data dirs; not in cwd
FAUST_DIR.mkdir(parents=True, exist_ok=True)
app = faust.App(f"{GROUP}-worker", broker=kafka_clients.faust_broker(config),
                broker_credentials=kafka_clients.faust_credentials(config), store="memory://",
                topic_partitions=config.partitions, web_enabled=False,
                topic_replication_factor=kafka_clients.replication(config),
                datadir=str(FAUST_DIR / "{conf.id}"),
                # Faust's own group carries no data; a short session lets a restarted
                # worker start without waiting out the dead one's minute-long default
                broker_session_timeout=config.session_timeout,
                broker_heartbeat_interval=min(3.0, config.session_timeout / 3))
outputs = Outputs(late=config.prefixed("late"), quarantine=config.prefixed("quarantine"),
                  windows=config.prefixed("windows"))
_pending: list[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]] = []
runtime = LiveRuntime(
    Topology.from_config(config, live=True),
    RedisWindowStore.connect(config.redis_url, config.namespace, config.window_specs(),
                             group=GROUP, pointer=config.pointer),
    emit=lambda *record: _pending.append(record),
    outputs=outputs,
    commit_interval=config.commit_interval,
)


_producer: AIOKafkaProducer | None = None


async def _send_pending() -> None:
    """Side outputs (late, quarantine, final windows): at least once, keyed for dedup; our
    own producer, so acks=all comes with idempotence (Faust's enables it only inside
    transactions): a retried send is never written twice or out of order."""
    global _producer
    batch = _pending[:]
    del _pending[:]
    if _producer is None:
        _producer = AIOKafkaProducer(**kafka_clients.aiokafka(config), acks="all",
                                     enable_idempotence=True, linger_ms=20)
        await _producer.start()
    futures = [await _producer.send(topic, value, key=key, headers=headers)
               for topic, key, value, headers in batch]
    for fut in futures:
        await fut


source = KafkaSource(config, runtime, GROUP, flush=_send_pending)
archiver = None
if config.archive:  # its own consumer group and progress: the archive never waits on the stream
    from auth_kappa.archive.archiver import Archiver
    from auth_kappa.archive.targets import open_store

    archiver = Archiver(config, open_store("s3", config))


@app.on_worker_init.connect
def _create_topics(app: faust.App, **kwargs: object) -> None:
    """Sources and side outputs exist before the first send (the broker may not auto-create)."""
    ensure_topics(kafka_clients.librdkafka(config), [*config.source_topics, outputs.late,
                  outputs.quarantine, outputs.windows], config.partitions,
                  replication=config.replication)


@app.task
async def _consume() -> None:
    log.info("auth-kappa worker: topics %s, windows %s, grace %ss, redis %s (namespace %s)",
             ",".join(config.source_topics), [s.label for s in config.window_specs()],
             config.grace, config.redis_url, runtime.store.namespace)
    await source.run()


@app.task
async def _archive() -> None:
    if archiver is not None:
        await archiver.run()


@app.on_before_shutdown.connect
async def _stop(app: faust.App, **kwargs: object) -> None:
    source.stop()
    if archiver is not None:
        archiver.stop()
    if _producer is not None:
        await _producer.stop()
