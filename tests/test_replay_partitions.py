"""Replay sees the archive as the live path saw Kafka: each row under its source partition,
and a plan that never promises rows it did not list. Local archive folders, no services."""

from __future__ import annotations

import asyncio

import numpy as np

from auth_kappa.archive.embedded import EmbeddedArchive, commit_sync
from auth_kappa.archive.local_store import LocalStore
from auth_kappa.archive.rolls import Progress, Roll
from auth_kappa.config import Config
from auth_kappa.topology.decode import Message
from auth_kappa.topology.keys import uuid_text
from replay.feed import feed, replay_topology
from replay.plan import make_plan

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


def test_rows_are_fed_under_their_source_partition(tmp_path):
    """Open meter windows carry the partition the meter's readings came from (so a
    rebuild indexes each meter in its own partition's set); nothing is late, and the
    totals are the readings'."""
    store = LocalStore(tmp_path)
    meters = {p: [4 * i + p for i in range(5)] for p in range(4)}   # 5 meters per partition
    n = 0
    for p, ms in meters.items():
        roll = Roll("electricity", "electricity", p)
        # partition 3 starts late and lags: its first readings are older than the others'
        ends = range(T0 + (600 if p == 3 else 5), T0 + 900 - 30 * (p == 3), 5)
        for off, (end, m) in enumerate((e, m) for e in ends for m in ms):
            roll.add(_reading(m, end), off, end * 1000)
        n += len(roll)
        commit_sync(store, Progress(), roll.seal())
    plan = asyncio.run(make_plan(store, T0, None, ("electricity",), TOPICS))
    topo = replay_topology(Config.load().window_specs(), 30.0)
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
