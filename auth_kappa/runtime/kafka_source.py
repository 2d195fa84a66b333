"""The hot path's Kafka edge: one group consumer feeding the LiveRuntime in bulk.

Faust's stream machinery costs several asyncio tasks per message (about 13k msg/s
here); a bulk fetch hands over thousands of records per call. So the Faust worker hosts
this loop as a task, and the consumer group, rebalance hooks and seeks are ours: on
aiokafka (its record batches read straight into columns, kafka_columns.py), or
librdkafka's consume(n) (runtime/confluent_consumer.py), whichever reads the topics'
message sizes faster (AUTH_CONSUMER=auto, runtime/consumer_choice.py). Either way a
fetch reaches the runtime as columns (MessageBatch). The fetch, ownership filter, seeks
and caught-up test are runtime/kafka_reader.py's, shared with a rebuild's catch-up; this
class adds the group: rebalances, checkpoints, recovery, the rebuild's freeze and switch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Protocol

import redis
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from auth_kappa.config import Config
from auth_kappa.kafka_admin import group_consumer
from auth_kappa.runtime import consumer_choice
from auth_kappa.runtime.confluent_consumer import ConfluentConsumer, group_settings
from auth_kappa.runtime.kafka_reader import FEED_BYTES, Fetch, KafkaReader, fetch_parts
from auth_kappa.runtime.live import LiveRuntime
from auth_kappa.runtime.switch import NamespaceFollower
from auth_kappa.state.redis_store import Fenced, RolledBack

log = logging.getLogger("auth_kappa.source")
# what makes the runtime drop its memory and recover (redis_store raises Fenced and
# RolledBack; its own socket raises OSError; redis-py raises RedisError; side outputs
# that the broker did not acknowledge raise KafkaError)
FAULTS = (redis.RedisError, OSError, Fenced, RolledBack, KafkaError)
MIN_FETCH_WAIT = 0.02   # s: how often a due checkpoint looks again for a free writer


class Flush(Protocol):
    """Sends the runtime's pending side outputs; with acks, until all are acknowledged."""

    def __call__(self, acks: bool = True) -> Awaitable[None]: ...


@dataclass
class KafkaSource:
    config: Config
    runtime: LiveRuntime
    group: str
    flush: Flush                        # sends the runtime's pending side outputs
    consumer: AIOKafkaConsumer | ConfluentConsumer | None = None
    reader: KafkaReader | None = None
    processed: int = 0
    feed_bytes: int = FEED_BYTES        # message bytes fed between two turns of the loop
    _stopping: bool = False
    _assigned: set[TopicPartition] = field(default_factory=set)
    _frozen: bool = False               # a rebuild asked us to hold still (runtime/switch.py)
    follower: NamespaceFollower | None = None
    _taking: asyncio.Lock = field(default_factory=asyncio.Lock)
    _committing: asyncio.Lock = field(default_factory=asyncio.Lock)
    _reassigned: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        c = self.config
        kind = await asyncio.to_thread(consumer_choice.choose, c)
        self.consumer = (ConfluentConsumer(group_settings(c, self.group))
                         if kind == "confluent" else group_consumer(c, self.group))
        self.reader = KafkaReader(c, self.runtime, self.consumer)
        self.runtime.auto_checkpoint = False      # commit() flushes side outputs first
        self.follower = NamespaceFollower(self.runtime.store, c.pointer,
                                          follows=c.namespace is None)
        self.consumer.subscribe(list(c.source_topics), listener=_Rebalance(self))
        await self.consumer.start()
        try:
            await self._loop()
        finally:
            await self._shutdown()

    async def _loop(self) -> None:
        last_tick = last_follow = time.monotonic()
        while not self._stopping:
            if self.runtime.broken is not None:
                await self._recover()
                continue
            try:
                if await self._step(time.monotonic() - last_tick >= 1.0) is None:
                    last_tick = time.monotonic()
                await self.flush(acks=False)   # acknowledged while reading on
                if self.runtime.due():
                    await self.commit(wait=False)
                if time.monotonic() - last_follow >= 0.5:
                    await self._follow()
                    last_follow = time.monotonic()
            except FAULTS as exc:
                self.runtime.fail(exc)
            await asyncio.sleep(0)

    async def _step(self, due: bool) -> Fetch | None:
        """One fetch through the runtime; None when the timer ran (idle partitions may
        have moved the watermark, a checkpoint may be due)."""
        # no longer than until a checkpoint is due, and past it (one in flight) in short
        # steps: the next lands as soon as the writer is free, not a whole wait later
        wait = min(self.config.batch_wait, max(MIN_FETCH_WAIT, self.runtime.until_due()))
        batch = await self.reader.fetch(wait)
        if self._taking.locked():    # an assignment is running: its seek decides what is
            async with self._taking:  # ours (this batch may predate it)
                pass
        await self._feed(batch)
        if due or not batch:
            self.runtime.tick()
            return None
        return batch

    async def _feed(self, batch: Fetch) -> None:
        """A fetch in parts (kafka_reader.fetch_parts), the loop turning between them so
        the group's heartbeats go out: fed whole, a fetch of frames kept the loop for
        longer than the session timeout on a busy machine, and the worker was dropped
        from the group and rejoined again and again without progress. A rebalance or a
        failure between parts drops the rest: the seek after it reads them again."""
        epoch = self.runtime.epoch
        for i, part in enumerate(fetch_parts(batch, self.feed_bytes)):
            if i:
                await asyncio.sleep(0)
                if self._taking.locked() or self.runtime.epoch != epoch:
                    return
            self.processed += self.reader.feed(part)

    async def commit(self, wait: bool = True) -> None:
        """A checkpoint whose side outputs (late, quarantine, final windows) the broker
        acknowledged first: a crash after the commit can then lose none of them (they are
        at least once; a crash before it re-derives them from the committed offsets).

        One at a time (the loop's, a rebalance's, a freeze's): one prepared while another
        waits for the broker must not land before it. The checkpoint in flight is awaited,
        not waited for: the loop keeps sending the group's heartbeats meanwhile."""
        async with self._committing:
            todo = self.runtime.prepare()
            await self.flush()
            await self._settled()
            self.runtime.submit(todo, wait=False)
            if wait:
                await self._applied()

    async def _settled(self) -> None:
        """Until the checkpoint in flight is applied (its error is raised by the runtime's
        next wait_checkpoint or submit)."""
        inflight = self.runtime.inflight()
        if inflight is not None:
            await asyncio.wait([asyncio.wrap_future(inflight)])

    async def _applied(self) -> None:
        """Until the checkpoint in flight is applied; its error is raised here."""
        await self._settled()
        self.runtime.wait_checkpoint()

    async def _recover(self) -> None:
        """The one recovery path: memory is dropped (runtime.fail); reload the last
        committed checkpoint of our partitions and seek to it, retrying while Redis does
        not answer. When another worker took a partition (Fenced) the group is
        rebalancing: its next assignment does the reload, and we only wait for it."""
        exc = self.runtime.broken
        if self._assigned:
            self.consumer.pause(*self._assigned)
        if isinstance(exc, Fenced):
            self._reassigned.clear()
            try:
                await asyncio.wait_for(self._until_reassigned(),
                                       2 * self.config.session_timeout)
            except TimeoutError:
                log.warning("fenced, and no new assignment came: reclaiming %d partitions",
                            len(self._assigned))
        delay = 0.2
        while not self._stopping and self.runtime.broken is not None:
            try:
                await self._take(self._assigned)
            except FAULTS as again:
                log.warning("recovery: store not ready (%s); retrying in %.1fs", again, delay)
                await self._wait(delay)
                delay = min(5.0, delay * 2)
                continue
            log.info("recovered from %s: resumed from the committed checkpoint",
                     type(exc).__name__)

    async def _until_reassigned(self) -> None:
        if not isinstance(self.consumer, ConfluentConsumer):
            await self._reassigned.wait()
        while not self._reassigned.is_set():
            await self._wait(0.1)

    async def _wait(self, seconds: float) -> None:
        """Wait without reading. librdkafka runs the group's rebalances inside consume()
        (aiokafka in a task of its own), so that consumer is kept served meanwhile; our
        partitions are paused, and anything it read is read again (ConfluentConsumer.idle)."""
        if isinstance(self.consumer, ConfluentConsumer):
            await self.consumer.idle(seconds)
        else:
            await asyncio.sleep(seconds)

    async def _follow(self) -> None:
        """A rebuild's freeze request or a moved pointer (see runtime/switch.py). The poll
        runs in a thread: behind a checkpoint transaction it can wait on Redis, and the
        loop keeps processing meanwhile."""
        action, namespace = await asyncio.to_thread(self.follower.poll)
        if action == "switch":
            if not self._frozen:
                await self.commit()
            log.info("namespace pointer moved: %s -> %s", self.runtime.store.namespace,
                     namespace)
            await self._applied()            # nothing in flight may land in the new one
            self.runtime.store.use_namespace(namespace)
            self._frozen = False
            await self.on_assigned(set(self._assigned))
            self.consumer.resume(*self._assigned)
        elif action == "freeze" and not self._frozen:
            await self.commit()
            self._freeze()
            log.info("frozen for the switch to namespace %s", namespace)
        elif action is None and self._frozen:
            self._frozen = False        # the rebuild gave up: carry on where we are
            self.consumer.resume(*self._assigned)
            log.info("freeze withdrawn; resuming in %s", self.runtime.store.namespace)

    def _freeze(self) -> None:
        self._frozen = True
        if self._assigned:
            self.consumer.pause(*self._assigned)
        self.follower.acknowledge(self.runtime._generations)

    async def _shutdown(self) -> None:
        """Graceful stop: last checkpoint, then leave the group (a kill -9 skips this safely;
        so does a broken runtime: its memory is not a continuation of Redis)."""
        try:
            if self._assigned and self.runtime.broken is None:
                await self.commit()
        except FAULTS as exc:
            log.warning("last checkpoint failed (%s); the next owner resumes from the "
                        "previous one", exc)
        finally:
            await self.consumer.stop()

    def stop(self) -> None:
        self._stopping = True

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        if self._assigned and self.runtime.broken is None:
            try:
                await self.commit()
            except FAULTS as exc:
                self.runtime.fail(exc)   # the next owner starts from the last good one

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        self._assigned = set(assigned)
        self._reassigned.set()
        try:
            await self._take(self._assigned)
        except FAULTS as exc:     # the loop's recovery retries until Redis answers
            self.runtime.fail(exc)
            if self._assigned:
                self.consumer.pause(*self._assigned)
            return
        # ownership moved during a freeze (or a worker joined one): hold these before
        # reading anything, and say so with the new generations
        if self._frozen or (self.follower is not None and
                            self.follower.poll()[0] == "freeze"):
            self._freeze()

    async def _take(self, tps: set[TopicPartition]) -> None:
        """Claim and reload partitions from their committed checkpoint, then seek there.
        In a thread: reopening the partitions' open windows reads Redis for every meter
        (~3 s per 75k meters), and the loop must keep sending the group's heartbeats."""
        async with self._taking:    # the loop's recovery and a rebalance, one at a time
            ours = [(self.config.utility_of(tp.topic), tp.partition) for tp in tps]
            counts = {self.config.utility_of(t): len(self.consumer.partitions_for_topic(t)
                                                     or ()) for t in {tp.topic for tp in tps}}
            await asyncio.to_thread(self.runtime.place, {u: n for u, n in counts.items() if n})
            seek = await asyncio.to_thread(self.runtime.assign, ours)
            await self.reader.seek(tps, seek)
        if tps and not self._frozen:
            self.consumer.resume(*tps)
        log.info("assigned %s; resuming from Redis offsets %s", sorted(ours), seek)


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, source: KafkaSource) -> None:
        self.source = source

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.source.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.source.on_assigned(assigned)
