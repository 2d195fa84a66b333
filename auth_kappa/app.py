"""The Faust edge: `faust -A auth_kappa.app worker`. Process lifecycle here; logic elsewhere.

Faust hosts the worker: start-up, signals, logging and timers. The meter topics are read
by KafkaSource (plain aiokafka `getmany` in the same consumer group), because Faust's
per-message stream path is ~50x slower. Every decision about windows, lateness, state
and offsets is the LiveRuntime's; the committed position lives in Redis with the state
and is sought on assignment.

Importing this module does nothing: the app is built on first access to `app` (which is
what `faust -A auth_kappa.app` does), or by `build_app(config)`.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import faust
from aiokafka import AIOKafkaProducer

from auth_kappa import kafka_clients
from auth_kappa.archive.archiver import Archiver
from auth_kappa.archive.child_process import ArchiverProcess
from auth_kappa.config import Config
from auth_kappa.insights.stage import InsightRules, Insights
from auth_kappa.kafka_admin import ensure_topics
from auth_kappa.runtime.kafka_source import KafkaSource
from auth_kappa.runtime.live import LiveRuntime, Outputs
from auth_kappa.state.redis_store import RedisWindowStore
from auth_kappa.topology.processor import Topology

log = logging.getLogger("auth_kappa.worker")

Record = tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]


class Worker:
    """One worker's parts: the runtime over Redis, the Kafka source, the archiver and the
    producer of side outputs. Built when the worker starts, never at import."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.outputs = Outputs(late=config.prefixed("late"),
                               quarantine=config.prefixed("quarantine"),
                               windows=config.prefixed("windows"),
                               alerts=config.prefixed("alerts"))
        self._pending: list[Record] = []
        self._producer: AIOKafkaProducer | None = None
        self._sending = asyncio.Lock()
        self._unacked: list[asyncio.Future] = []   # handed to the producer, not acked yet
        self.runtime = LiveRuntime(
            Topology.from_config(config, live=True),
            RedisWindowStore.from_config(config),
            emit=lambda *record: self._pending.append(record),
            outputs=self.outputs,
            commit_interval=config.commit_interval,
            insights=Insights(InsightRules.from_config(config), keep_all=False)
            if config.insights else None,
        )
        self.source = KafkaSource(config, self.runtime, config.group, flush=self.send_pending)
        # its own group and progress: the archive never waits on the stream
        self.archiver: Archiver | ArchiverProcess | None = None
        if config.archive and config.archive_process:
            self.archiver = ArchiverProcess(config)
        elif config.archive:
            from auth_kappa.archive.targets import open_store

            self.archiver = Archiver(config, open_store("s3", config))

    def create_topics(self) -> None:
        """Sources and side outputs exist before the first send (a broker may not
        auto-create them)."""
        c = self.config
        ensure_topics(kafka_clients.librdkafka(c), [*c.source_topics, self.outputs.late,
                      self.outputs.quarantine, self.outputs.windows, self.outputs.alerts], c.partitions,
                      replication=c.replication)

    async def send_pending(self, acks: bool = True) -> None:
        """Side outputs (late, quarantine, final windows): at least once, keyed for dedup;
        our own producer, so acks=all comes with idempotence (Faust's enables it only
        inside transactions): a retried send is never written twice or out of order.
        `acks`: also wait until the broker acknowledged every record handed over so far,
        by any call (a checkpoint's offsets commit only then); without, the records are
        only handed to the producer.

        One call at a time: a rebalance's checkpoint flushes while the loop's flush may
        still wait for acks, and it must not find the list empty and commit offsets
        before the records taken by the other call are acknowledged."""
        async with self._sending:
            batch = self._pending[:]
            del self._pending[:]
            if self._producer is None:
                self._producer = AIOKafkaProducer(**kafka_clients.aiokafka(self.config),
                                                  acks="all", enable_idempotence=True,
                                                  linger_ms=20)
                await self._producer.start()
            self._unacked += [await self._producer.send(topic, value, key=key,
                                                        headers=headers)
                              for topic, key, value, headers in batch]
            if acks:
                unacked, self._unacked = self._unacked, []
                for fut in unacked:
                    await fut

    async def consume(self) -> None:
        c = self.config
        log.info("auth-kappa worker: topics %s, windows %s, grace %ss, redis %s "
                 "(namespace %s)", ",".join(c.source_topics),
                 [s.label for s in c.window_specs()], c.grace, c.redis_url,
                 self.runtime.store.namespace)
        await self.source.run()

    async def archive(self) -> None:
        if self.archiver is not None:
            await self.archiver.run()

    async def stop(self) -> None:
        self.source.stop()
        if isinstance(self.archiver, ArchiverProcess):
            await self.archiver.stop()
        elif self.archiver is not None:
            self.archiver.stop()
        if self._producer is not None:
            await self._producer.stop()


def build_app(config: Config | None = None) -> faust.App:
    """The worker's Faust app; its parts (Redis, Kafka, S3) are made when it starts."""
    config = config or Config.load()
    faust_dir = Path(config.cache_dir).resolve() / "faust"   # Faust makes <id>-data dirs
    faust_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(f"{config.group}-worker", broker=kafka_clients.faust_broker(config),
                    broker_credentials=kafka_clients.faust_credentials(config),
                    store="memory://", topic_partitions=config.partitions, web_enabled=False,
                    topic_replication_factor=kafka_clients.replication(config),
                    datadir=str(faust_dir / "{conf.id}"),
                    # Faust's own group carries no data; a short session lets a restarted
                    # worker start without waiting out the dead one's minute-long default
                    broker_session_timeout=config.session_timeout,
                    broker_heartbeat_interval=min(3.0, config.session_timeout / 3))
    parts: list[Worker] = []

    def worker() -> Worker:
        if not parts:
            parts.append(Worker(config))
        return parts[0]

    @app.on_worker_init.connect
    def _create_topics(app: faust.App, **kwargs: object) -> None:
        worker().create_topics()

    @app.task
    async def _consume() -> None:
        await worker().consume()

    @app.task
    async def _archive() -> None:
        await worker().archive()

    @app.on_before_shutdown.connect
    async def _stop(app: faust.App, **kwargs: object) -> None:
        if parts:
            await parts[0].stop()

    return app


def __getattr__(name: str) -> Any:
    """`auth_kappa.app.app`, built on first access (PEP 562): `faust -A auth_kappa.app`."""
    if name == "app":
        globals()["app"] = built = build_app()
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
