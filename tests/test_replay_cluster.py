"""Replay on a Redis Cluster: a rebuild from the archive, its Kafka catch-up and the
namespace switch, then a correction of tampered windows; every window against a brute
force over the readings. Real Kafka, a private real Redis Cluster, a local archive."""

from __future__ import annotations

import asyncio
import os

import numpy as np
import pytest

from auth_kappa import kafka_clients
from auth_kappa.archive.embedded import commit_sync
from auth_kappa.archive.local_store import LocalStore
from auth_kappa.archive.rolls import Progress, Roll
from auth_kappa.config import Config
from auth_kappa.kafka_admin import delete_topics, ensure_topics
from auth_kappa.state.clients import sync_client
from auth_kappa.state.redis_store import RedisWindowStore
from auth_kappa.topology.partitioner import partitions_of
from replay.correct import correct
from replay.plan import make_plan
from replay.rebuild import rebuild
from tests.support.kafka import producer as ordered_producer
from tests.support.live import assert_windows_exact

pytestmark = [pytest.mark.stack, pytest.mark.slow]
UTILS = ("electricity", "gas", "water")
T0 = 1772409600            # 2026-03-02T00:00:00Z
STEP, READINGS = 20, 60    # a reading every 20 s for 20 minutes
PARTS, METERS = 4, 40
ARCHIVED = 0.7             # of each partition's messages, in the archive before the rebuild


def _sid(u: int, m: int) -> str:
    return f"{u:08x}-0000-4000-8000-{m:012d}"


def _readings() -> tuple[dict[tuple[str, int], list[bytes]], dict[str, list[bytes]], int]:
    """Per (utility, partition): the messages in stream order (a few resent duplicates,
    one reading on another partition than its meter's); per utility the lines the brute
    force counts (not the misplaced one). WY readings come only from partition 0's
    meters, so a WY window has no share on other partitions."""
    rng = np.random.default_rng(11)
    stream: dict[tuple[str, int], list[bytes]] = {(u, p): [] for u in UTILS for p in range(PARTS)}
    truth: dict[str, list[bytes]] = {u: [] for u in UTILS}
    for ui, u in enumerate(UTILS):
        sids = [_sid(ui, m) for m in range(METERS)]
        home = partitions_of([s.encode() for s in sids], PARTS).tolist()
        state = ["WY" if home[m] == 0 and m % 3 == 0 else ("CA", "TX", "NY")[m % 3]
                 for m in range(METERS)]
        for k in range(1, READINGS + 1):
            end = T0 + k * STEP
            for m, sid in enumerate(sids):
                line = (f"{sid},u{m},household,{end - STEP},{state[m]},"
                        f"{rng.integers(0, 3000) / 1000},{end}").encode()
                stream[(u, home[m])].append(line)
                truth[u].append(line)
                if rng.random() < 0.02:   # a resend, later on the same partition
                    stream[(u, home[m])].append(line)
                    truth[u].append(line)
        stray = next(m for m in range(METERS) if home[m] != 1)   # belongs elsewhere
        stream[(u, 1)].insert(10, f"{sids[stray]},x,household,{T0 + 5},CA,9.5,{T0 + 25}"
                              .encode())
    return stream, truth, sum(len(v) for v in stream.values())


def _produce(config: Config, stream: dict[tuple[str, int], list[bytes]]) -> None:
    producer = ordered_producer(config)
    for (u, p), lines in stream.items():
        for line in lines:
            producer.produce(config.prefixed(u), line, partition=p)
        producer.poll(0)
    assert producer.flush(30) == 0


def _archive(store: LocalStore, config: Config, stream, lo: float, hi: float,
             before: dict) -> dict:
    """Offsets [lo, hi) of each partition's messages into the archive, as the archiver
    commits a roll; returns each partition's progress."""
    after = {}
    for (u, p), lines in stream.items():
        a, b = int(len(lines) * lo), int(len(lines) * hi)
        roll = Roll(u, config.prefixed(u), p)
        for off in range(a, b):
            roll.add(lines[off], off, (T0 + 86400) * 1000)
        after[(u, p)] = commit_sync(store, before.get((u, p), Progress()), roll.seal())
    return after


def _plan(store: LocalStore, config: Config, end: int | None):
    return asyncio.run(make_plan(store, T0, end, UTILS, {u: config.prefixed(u) for u in UTILS}))


def _tamper(store: RedisWindowStore) -> tuple[int, int]:
    """Wrong values in some final 1-minute windows, one meter window deleted, and a WY
    share where no partition has one: (windows changed, windows added) a correction must
    report."""
    r, changed = store.client, 0
    for ui, u in enumerate(UTILS):
        for m in (1, 2):
            key = store.meter_key(_sid(ui, m), u, 60)
            raw = r.hget(key, str(T0 + 300))
            r.hset(key, str(T0 + 300), np.float64(123.25).tobytes() + raw[8:])
            changed += 1
        shares = [store.state_key(u, 60, p) for p in range(PARTS)]
        field = f"CA:{T0 + 420}"
        held = [k for k in shares if r.hexists(k, field)]
        raw = r.hget(held[0], field)
        r.hset(held[0], field, raw[:8] + (int.from_bytes(raw[8:16], "little") + 7)
               .to_bytes(8, "little") + raw[16:])
        wy = f"WY:{T0 + 480}"
        r.hset(shares[1], wy, r.hget(shares[0], wy))   # a share partition 1 never had
        changed += 2
    r.hdel(store.meter_key(_sid(0, 3), UTILS[0], 60), str(T0 + 600))
    return changed, 1


def test_rebuild_catch_up_and_correction_on_a_cluster_are_exact(stack, redis_cluster,
                                                                tmp_path, unique):
    name = f"rc{unique}"
    pointer = f"auth:{name}:pointer"
    env = {**os.environ, **redis_cluster.env, "AUTH_TOPIC_PREFIX": f"{name}-",
           "AUTH_GROUP": name, "AUTH_NAMESPACE": "", "AUTH_POINTER": pointer}
    config = Config.load(env=env)
    client = sync_client(config.redis_url, True)
    v1, v2 = f"{name}-v1", f"{name}-v2"
    stream, truth, messages = _readings()
    csv = tmp_path / "truth"
    csv.mkdir()
    for u in UTILS:
        (csv / f"{u}.csv").write_bytes(b"\n".join(truth[u]) + b"\n")
    archive = LocalStore(tmp_path / "archive")
    try:
        client.set(pointer, v1)
        ensure_topics(kafka_clients.librdkafka(config), config.source_topics, PARTS)
        _produce(config, stream)
        progress = _archive(archive, config, stream, 0, ARCHIVED, {})
        report = rebuild(config, archive, _plan(archive, config, None), say=lambda s: None,
                         timeout=30)
        assert report.switched and client.get(pointer).decode() == v2
        assert report.feed.quarantined == len(UTILS), "misplaced readings are quarantined"
        assert report.catch_up.consumed == messages - report.feed.rows
        live = RedisWindowStore.from_config(config)
        assert live.cluster and live.namespace == v2
        assert live.partition_counts() == {u: PARTS for u in UTILS}
        assert live.offsets() == {f"{u}:{p}": len(v) for (u, p), v in stream.items()}
        assert not list(client.scan_iter(match=f"auth:{v1}:*")), "old namespace left"
        assert assert_windows_exact(live, csv, UTILS, meters=METERS) > 1000

        _archive(archive, config, stream, ARCHIVED, 1, progress)   # the archiver catches up
        changed, added = _tamper(live)
        plan = _plan(archive, config, T0 + READINGS * STEP)
        fixed = correct(config, archive, plan, live)
        assert (fixed.changed, fixed.added) == (changed, added)
        assert fixed.feed.quarantined == len(UTILS)
        assert assert_windows_exact(live, csv, UTILS, meters=METERS) > 1000
        again = correct(config, archive, plan, RedisWindowStore.from_config(config))
        assert (again.changed, again.added) == (0, 0), "a second run changes nothing"
    finally:
        for ns in (v1, v2):
            RedisWindowStore(client, ns, config.window_specs()).drop_namespace()
        client.delete(pointer)
        delete_topics(config.kafka, config.source_topics)


def test_a_cluster_rebuild_with_no_partition_count_is_refused_before_any_write(
        stack, redis_cluster, tmp_path, unique):
    """No topic in Kafka and no count stored: a meter's keys would have no home, so the
    rebuild stops in one line and leaves Redis as it was."""
    from auth_kappa.errors import UserError

    name = f"rn{unique}"
    env = {**os.environ, **redis_cluster.env, "AUTH_TOPIC_PREFIX": f"{name}-",
           "AUTH_GROUP": name, "AUTH_NAMESPACE": "", "AUTH_POINTER": f"auth:{name}:pointer"}
    config = Config.load(env=env)
    client = sync_client(config.redis_url, True)
    archive = LocalStore(tmp_path / "archive")
    stream = {("gas", 0): [f"{_sid(1, 0)},u,household,{T0},CA,1.5,{T0 + 20}".encode()]}
    _archive(archive, config, stream, 0, 1, {})
    try:
        client.set(config.pointer, f"{name}-v1")
        with pytest.raises(UserError, match="no partition count is known for gas"):
            rebuild(config, archive, _plan(archive, config, None), say=lambda s: None,
                    archive_only=True)
        assert client.get(config.pointer).decode() == f"{name}-v1"
        assert not list(client.scan_iter(match=f"auth:{name}-*")), "nothing written"
    finally:
        client.delete(config.pointer)
