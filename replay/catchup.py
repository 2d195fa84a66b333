"""Rebuild, second half: continue the new namespace from Kafka, freeze the live workers,
close the gap exactly, switch the pointer, retire the old namespace.

The catch-up consumer has no group (manual assignment of every partition): it must not
take partitions away from the live workers. It runs the LiveRuntime, the workers' own
code, against the new namespace, read by the workers' own loop step
(auth_kappa/runtime/kafka_reader.py). Protocol: auth_kappa/runtime/switch.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition

from auth_kappa import kafka_clients
from auth_kappa.config import Config
from auth_kappa.errors import ServiceUnavailable, UserError
from auth_kappa.runtime.kafka_reader import KafkaReader
from auth_kappa.runtime.live import LiveRuntime
from auth_kappa.runtime.switch import generations
from auth_kappa.state.redis_store import RedisWindowStore
from auth_kappa.topology.processor import Topology

Say = Callable[[str], None]


@dataclass
class CatchUp:
    consumed: int = 0
    froze: list[str] = field(default_factory=list)      # partitions the workers held
    offsets: dict[str, int] = field(default_factory=dict)
    moved: bool = False
    dropped_keys: int = 0
    freeze_seconds: float = 0.0


def live_partitions(config: Config) -> list[str]:
    """"<utility>:<partition>" owned by members of the live consumer group right now."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(kafka_clients.librdkafka(config))
    try:
        desc = admin.describe_consumer_groups([config.group])[config.group].result(timeout=15)
    except Exception as exc:  # noqa: BLE001
        raise ServiceUnavailable(f"cannot describe consumer group {config.group} at "
                                 f"{config.kafka}: {exc}") from None
    out = []
    for m in desc.members:
        for tp in (m.assignment.topic_partitions if m.assignment else []):
            if tp.topic in config.source_topics:
                out.append(f"{config.utility_of(tp.topic)}:{tp.partition}")
    return sorted(out)


def topic_partitions(config: Config) -> dict[str, int]:
    """topic -> its partition count, for the source topics Kafka has."""
    from confluent_kafka.admin import AdminClient

    meta = AdminClient(kafka_clients.librdkafka(config)).list_topics(timeout=15).topics
    return {t: len(meta[t].partitions) for t in config.source_topics if t in meta}


async def catch_up_and_switch(config: Config, new: RedisWindowStore, old: RedisWindowStore,
                              say: Say, timeout: float = 120.0) -> CatchUp:
    report = CatchUp()
    members = await asyncio.to_thread(live_partitions, config)
    consumer = AIOKafkaConsumer(**kafka_clients.aiokafka(config), group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                max_partition_fetch_bytes=8 * 1024 * 1024,
                                fetch_max_bytes=64 * 1024 * 1024)
    await consumer.start()
    frozen = False
    client = old.client
    try:
        counts = await asyncio.to_thread(topic_partitions, config)
        tps = [TopicPartition(t, p) for t in config.source_topics
               for p in range(counts.get(t, 0))]
        if not tps:
            raise UserError(f"no partitions found for {', '.join(config.source_topics)}")
        consumer.assign(tps)
        rt = LiveRuntime(Topology.from_config(config, live=True), new, emit=lambda *a: None,
                         commit_interval=config.commit_interval)
        if new.cluster:   # as a worker places them: where each meter's keys live
            rt.place({config.utility_of(t): n for t, n in counts.items() if n})
        name = {tp: f"{config.utility_of(tp.topic)}:{tp.partition}" for tp in tps}
        reader = KafkaReader(config, rt, consumer)
        # from the archive's end; a partition with nothing archived from its log start
        await reader.seek(tps, rt.assign([(config.utility_of(tp.topic), tp.partition)
                                          for tp in tps]))
        say(f"catch-up: reading Kafka from the archive's end into {new.namespace}")
        report.consumed += await _consume(reader, tps, None)
        if members:
            say(f"freezing the live workers of group {config.group} ({len(members)} "
                f"partitions) in {old.namespace}")
            client.hset(old.keys.control, "freeze", new.namespace)
            frozen = True
            t0 = time.monotonic()
            await _wait_acks(old, members, timeout)
            report.froze = members
        live = old.offsets()
        stop_at = {}
        for tp in tps:
            mine = rt.next_offset(config.utility_of(tp.topic), tp.partition)
            theirs = live.get(name[tp])
            stop_at[tp] = theirs if theirs is not None else (mine or 0)
        report.consumed += await _consume(reader, tps, stop_at)
        rt.checkpoint()
        report.offsets = new.offsets()
        client.set(config.pointer, new.namespace)   # readers (and workers) switch here
        if frozen:
            report.freeze_seconds = time.monotonic() - t0
        say(f"pointer {config.pointer} -> {new.namespace}")
        claimed = dict(rt._generations)
    except BaseException:
        if frozen:
            client.hdel(old.keys.control, "freeze")
        raise
    finally:
        await consumer.stop()
    report.moved = await _wait_moved(new, members, claimed, timeout)
    if report.moved:
        report.dropped_keys = old.drop_namespace()
        say(f"old namespace {old.namespace} removed ({report.dropped_keys:,} keys)")
    else:   # e.g. workers pinned by AUTH_NAMESPACE: let them carry on where they are
        client.hdel(old.keys.control, "freeze")
        say(f"some workers did not move to {new.namespace} within {timeout:.0f}s (pinned "
            f"with AUTH_NAMESPACE?); {old.namespace} is kept and unfrozen (drop it with "
            "RedisWindowStore.drop_namespace once nothing writes it)")
    return report


async def _consume(reader: KafkaReader, tps: list[TopicPartition],
                   stop_at: dict[TopicPartition, int] | None) -> int:
    """Without stop_at: until the lag is under one batch. With it: exactly up to stop_at."""
    n = 0
    last_check = 0.0
    while True:
        if stop_at is not None and reader.reached(stop_at):
            return n
        batch = await reader.fetch(0.2)
        n += reader.feed(batch, stop_at)
        reader.runtime.tick()
        if stop_at is None and time.monotonic() - last_check > 0.5:
            last_check = time.monotonic()
            if not batch and await reader.lag(tps) <= reader.config.batch_size:
                return n


async def _wait_acks(old: RedisWindowStore, members: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        gens = generations(old, members)
        acks = {k.decode(): int(v) for k, v in
                old.client.hgetall(old.keys.frozen).items()}
        if all(p in acks and acks[p] == gens.get(p) for p in members):
            return
        await asyncio.sleep(0.2)
    raise UserError(f"the live workers did not acknowledge the freeze within {timeout:.0f}s; "
                    "nothing was switched (are they running this version?)")


async def _wait_moved(new: RedisWindowStore, members: list[str], claimed: dict[str, int],
                      timeout: float) -> bool:
    """Every partition a live worker held is claimed again in the new namespace."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        gens = generations(new, members)
        if all(gens.get(p, 0) > claimed.get(p, 0) for p in members):
            return True
        await asyncio.sleep(0.2)
    return False
