"""Replay sees the archive as the live path saw Kafka: each row under its source partition,
and a plan that never promises rows it did not list. Local archive folders (and Redis for
the rebuild's meter sets)."""

from __future__ import annotations

import asyncio
import os

import numpy as np
import pytest
import redis

from auth_kappa.archive.embedded import EmbeddedArchive, commit_sync
from auth_kappa.archive.local_store import LocalStore
from auth_kappa.archive.rolls import Progress, Roll
from auth_kappa.config import Config
from auth_kappa.state.redis_store import RedisWindowStore
from auth_kappa.topology.decode import Message
from auth_kappa.topology.keys import uuid_text
from auth_kappa.topology.processor import Topology
from replay.feed import feed
from replay.plan import make_plan
from replay.rebuild import build

T0 = 1772409600
TOPICS = {"electricity": "electricity"}


def _reading(meter: int, end: int, state: str = "CA") -> bytes:
    sid = f"00000000-0000-4000-8000-{meter:012d}"
    return f"{sid},u{meter},household,{end - 5},{state},0.25,{end}".encode()


class RollLandsAfterFirstListing:
    """The local store, with the archiver committing one more roll (objects, then
    progress) right after the plan's first listing: a roll landing mid-plan."""

    def __init__(self, archive: EmbeddedArchive, messages: list[Message]) -> None:
        self.inner, self.archive, self.pending = archive.store, archive, messages
        self.url = self.inner.url

    async def list(self, prefix: str) -> list[tuple[str, int]]:
        got = await self.inner.list(prefix)
        if self.pending:
            self.archive.add("electricity", self.pending)
            self.archive.flush()
            self.pending = []
        return got

    async def get(self, key: str) -> bytes | None:
        return await self.inner.get(key)

    async def tail(self, key: str, n: int) -> bytes:
        return await self.inner.tail(key, n)

    async def close(self) -> None:
        await self.inner.close()


def test_a_roll_landing_while_planning_is_read_or_left_to_kafka(tmp_path):
    """Every offset below the plan's progress is in a listed object: what the rebuild
    reads from the archive and what its catch-up reads from Kafka meet exactly."""
    archive = EmbeddedArchive(tmp_path)
    archive.add("electricity", [Message(_reading(m, T0 + 5)) for m in range(10)])
    archive.flush()
    store = RollLandsAfterFirstListing(archive, [Message(_reading(m, T0 + 10))
                                                 for m in range(10)])
    plan = asyncio.run(make_plan(store, T0, None, ("electricity",), TOPICS))
    promised = plan.progress["electricity:0"].next_offset
    listed = {o for r in plan.objects["electricity"] for o in range(r.first, r.last + 1)}
    missing = sorted(set(range(promised)) - listed)
    assert not missing, f"progress says {promised}, but offsets {missing} are in no object"


def _partitioned_archive(root) -> tuple[LocalStore, int]:
    """4 partitions, 5 meters each (meter m on partition m % 4); partition 3 starts late
    and lags. Returns the store and the number of readings."""
    store = LocalStore(root)
    n = 0
    for p in range(4):
        roll = Roll("electricity", "electricity", p)
        ends = range(T0 + (600 if p == 3 else 5), T0 + 900 - 30 * (p == 3), 5)
        for off, (end, m) in enumerate((e, 4 * i + p) for e in ends for i in range(5)):
            roll.add(_reading(m, end), off, end * 1000)
        n += len(roll)
        commit_sync(store, Progress(), roll.seal())
    return store, n


def test_rows_are_fed_under_their_source_partition(tmp_path):
    """Open meter windows carry the partition the meter's readings came from (so a
    rebuild indexes each meter in its own partition's set); nothing is late, and the
    totals are the readings'."""
    store, n = _partitioned_archive(tmp_path)
    plan = asyncio.run(make_plan(store, T0, None, ("electricity",), TOPICS))
    topo = Topology.from_config(Config.load(env={}), live=False)
    finals: list = []
    stats = feed(store, plan, topo, finals.append, finish=False)
    assert stats.late == 0 and stats.accepted == n
    assert sorted(topo.watermarks["electricity"].partitions()) == [0, 1, 2, 3]
    for (_, level, size), table in topo.tables.items():
        if level != "meter" or not len(table):
            continue
        rows = table.snapshot()
        meter = np.array([int(s[-12:]) for s in uuid_text(rows.k0, rows.k1)])
        assert (rows.part == meter % 4).all(), f"{size}s windows under another partition"
    counted = sum(int(rows.count.sum()) for f in finals for (_, lv, sz), rows in f.items()
                  if lv == "state" and sz == 60)
    counted += sum(int(t.snapshot().count.sum()) for (_, lv, sz), t in topo.tables.items()
                   if lv == "state" and sz == 60)
    assert counted == n


@pytest.mark.stack
def test_a_rebuild_indexes_each_meter_under_its_own_partition(stack, tmp_path, unique):
    """The rebuild's meter sets are the live path's: every meter with a stored window, in
    its own partition's set (the set a partition's next owner reopens windows from)."""
    store, _ = _partitioned_archive(tmp_path)
    plan = asyncio.run(make_plan(store, T0, None, ("electricity",), TOPICS))
    config = Config.load(env={**os.environ, "AUTH_GROUP": unique})
    new = RedisWindowStore(redis.Redis.from_url(stack.redis_url), f"rbp{unique}",
                           config.window_specs(), group=unique)
    try:
        build(config, store, plan, new)
        for p in range(4):
            got = {int(s[-12:]) for s in new.client.smembers(new.meters_key("electricity", p))}
            assert got == {4 * i + p for i in range(5)}, f"partition {p}"
        assert new.highs() == {f"electricity:{p}": T0 + 895 - 30 * (p == 3) for p in range(4)}
    finally:
        new.drop_namespace()
