"""Household reads from memory (dashboards/changes.py, meter_view.py) are exact: after a stream
of real checkpoints into the stack's Redis (private namespace), every meter's answer from the
view equals a direct read of Redis and an independent brute force of what was written, for a
dashboard that watched from the start, one started late, one restarted, and one that missed
notices (the stream trimmed past it while it was not reading)."""

from __future__ import annotations

import asyncio
import random
import uuid

import numpy as np
import orjson
import pytest
import redis

from auth_kappa.config import Config
from auth_kappa.state import codec
from auth_kappa.state.redis_store import NOTICES_KEPT, RedisWindowStore
from auth_kappa.topology.keys import uuid_keys
from auth_kappa.topology.schema import STATES, UTILITIES
from auth_kappa.topology.window_table import Rows
from dashboards import queries, registry
from dashboards.changes import by_meter
from dashboards.meter_view import meter_key
from dashboards.redis_reader import RedisReader

pytestmark = pytest.mark.stack
T0 = 1_700_000_000 // 3600 * 3600
METERS = 30


@pytest.fixture
def rig(stack, unique):
    ns, prefix = f"dv{unique}", f"auth:reg{unique}:"
    # retention shorter than a page's hour and day: memory must trim as Redis does
    config = Config.load(env={"AUTH_NAMESPACE": ns, "AUTH_GROUP": ns,
                              "AUTH_METER_RETENTION": "1m=30m,1h=10h",
                              "AUTH_RETENTION": "1m=40m,1h=20h"})
    store = RedisWindowStore.connect(config.redis_url, ns, config.window_specs(), group=ns)
    admin = redis.Redis.from_url(config.redis_url)
    rnd = random.Random(7)
    sids = [str(uuid.UUID(int=rnd.getrandbits(128), version=4)) for _ in range(METERS)]
    for i, sid in enumerate(sids[:-3]):   # three meters have windows but no registry entry
        admin.hset(registry.meter_key(sid, prefix), mapping={
            "user_name": f"user {i}", "type": "household", "state": "CA"})
    yield config, store, sids, prefix
    for pattern in (f"auth:{ns}:*", f"{prefix}*"):
        for key in admin.scan_iter(match=pattern, count=1000):
            admin.unlink(key)


def _source(config: Config, prefix: str, watch: int) -> RedisReader:
    specs = config.window_specs()
    return RedisReader(config.redis_url, tuple(s.size for s in specs), config.group,
                       config.namespace, pointer=config.pointer, registry_prefix=prefix,
                       watch=watch, meter_keep={s.size: s.keep("meter") for s in specs},
                       state_keep={s.size: s.keep("state") for s in specs})


class Writer:
    """Checkpoints of absolute meter windows, and the brute force: the last value written
    to each (meter, utility, size, window_start), with the store's retention applied."""

    def __init__(self, store: RedisWindowStore, sids: list[str], seed: int = 1) -> None:
        self.store, self.sids, self.rnd = store, sids, random.Random(seed)
        self.keys = uuid_keys(np.array(sids, dtype="S36"))[0]
        self.t = T0
        self.truth: dict[tuple[str, str, int, int], tuple[float, int, float, float]] = {}
        self.keep = {s.size: s.keep("meter") for s in store.windows}
        # the fleet: (utility, size) -> newest start held, {(state, start): merged value}
        self.state_keep = {s.size: s.keep("state") for s in store.windows}
        self.states: dict[tuple[str, int], tuple[int | None, dict]] = {}

    def checkpoint(self, step: int = 40, pick: list[int] | None = None) -> None:
        self.t += self.rnd.randint(1, step)
        utility = self.rnd.choice(UTILITIES)
        pick = pick or sorted(self.rnd.sample(range(len(self.sids)), self.rnd.randint(1, 12)))
        dirty = {}
        for size in self.keep:
            starts = []
            for _ in pick:   # now, or now and then a window some minutes back (a correction)
                back = self.rnd.random() < 0.1
                starts.append((self.t - (self.rnd.randint(1, 5) * size if back else 0))
                              // size * size)
            rows = self._rows(pick, np.array(starts, np.int64))
            dirty[(utility, "meter", size)] = rows
            dirty[(utility, "state", size)] = self._state_rows(utility, size)
            for i, w, s, c, lo, hi in zip(pick, rows.window_start.tolist(), rows.sum.tolist(),
                                          rows.count.tolist(), rows.min.tolist(),
                                          rows.max.tolist(), strict=True):
                self.truth[(self.sids[i], utility, size, w)] = (s, c, lo, hi)
        self.store.checkpoint(dirty, {}, {f"{u}:0": self.t for u in UTILITIES})

    def _state_rows(self, utility: str, size: int) -> Rows:
        """Per-state deltas of this checkpoint, merged into the brute force the way the
        store's script does: newest start N, cut = floor((N - retention) / size) * size,
        deltas above the cut added, windows at or below it gone."""
        picked = self.rnd.sample(range(len(STATES)), self.rnd.randint(1, 6))
        back = [self.rnd.random() < 0.1 for _ in picked]
        starts = np.array([(self.t - (self.rnd.randint(1, 5) * size if b else 0)) // size * size
                           for b in back], np.int64)
        n = len(picked)
        count = np.array([self.rnd.randint(1, 50) for _ in range(n)], np.int64)
        sums = np.array([self.rnd.random() * 9 for _ in range(n)])
        lo, hi = sums / count / 2, sums / count * 2
        newest, held = self.states.get((utility, size), (None, {}))
        newest = max(int(starts.max()), newest if newest is not None else int(starts.max()))
        cut = (newest - self.state_keep[size]) // size * size
        for st, w, sm, c, a, b in zip(picked, starts.tolist(), sums.tolist(), count.tolist(),
                                      lo.tolist(), hi.tolist(), strict=True):
            if w > cut:
                s0, c0, a0, b0 = held.get((STATES[st], w), (0.0, 0, np.inf, -np.inf))
                held[(STATES[st], w)] = (s0 + sm, c0 + c, min(a0, a), max(b0, b))
        held = {k: v for k, v in held.items() if k[1] > cut}
        self.states[(utility, size)] = (newest, held)
        return Rows(k0=np.array(picked, np.uint64), k1=np.zeros(n, np.uint64),
                    window_start=starts, sum=sums, count=count, min=lo, max=hi, seen=None)

    def expected_states(self, utility: str, size: int, starts: list[int]) -> list:
        """Brute force: (51 states x starts) (sum, count), schema.STATES order."""
        held = self.states.get((utility, size), (None, {}))[1]
        return [[held.get((st, w), (0.0, 0))[:2] for w in starts] for st in STATES]

    def _rows(self, pick: list[int], starts: np.ndarray) -> Rows:
        n = len(pick)
        k = self.keys[pick]
        count = np.array([self.rnd.randint(1, 500) for _ in range(n)], np.int64)
        sums = np.round(np.array([self.rnd.random() * 50 for _ in range(n)]), 6)
        return Rows(k0=k[:, 0].copy(), k1=k[:, 1].copy(), window_start=starts, sum=sums,
                    count=count, min=sums / count, max=sums, seen=np.zeros((n, 1), np.uint64),
                    new=np.ones(n, bool), part=np.zeros(n, np.int64))

    def expected(self, sid: str, utility: str, size: int, starts: list[int]) -> list:
        """Brute force: the last value written, unless the store's retention cut it
        (window_start <= floor((newest - retention) / size) * size)."""
        newest = max((w for (s, u, z, w) in self.truth if (s, u, z) == (sid, utility, size)),
                     default=None)
        out = []
        for w in starts:
            v = self.truth.get((sid, utility, size, w))
            cut = None if newest is None else (newest - self.keep[size]) // size * size
            out.append((0.0, 0) if v is None or w <= cut else (v[0], v[1]))
        return out


async def _caught_up(src: RedisReader, store: RedisWindowStore) -> None:
    """The tail has applied every notice Redis holds (and the clocks are polled)."""
    counter = store.keys.changes()[1]
    for _ in range(400):
        await src.refresh()
        n = int(store.client.get(counter) or 0)
        if src.changes.ready and src.changes.n == n:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the tail did not reach notice {n} (at {src.changes.n})")


async def _compare(view: RedisReader, direct: RedisReader, writer: Writer) -> int:
    """Every meter, every utility: the view's answer equals Redis and the brute force, both
    through Reader.meter and through the household summary the API serves."""
    await direct.refresh()
    served = 0
    for sid in writer.sids:
        clock = await direct.clock()
        reads = [(u, size, queries.aligned(clock.newest[u], size, n))
                 for u in UTILITIES if u in clock.newest
                 for size, n in queries.summary_windows(direct.sizes).items()]
        hits = view.changes.hits
        info_v, got = await view.meter(sid, reads)
        info_d, want = await direct.meter(sid, reads)
        served += view.changes.hits - hits
        assert info_v == info_d, sid
        for (u, size, starts), g, w in zip(reads, got, want, strict=True):
            assert g.tobytes() == w.tobytes(), (sid, u, size)
            truth = writer.expected(sid, u, size, starts)
            assert list(zip(g["sum"].tolist(), g["count"].tolist(), strict=True)) == truth, \
                (sid, u, size)
        for rng in ("hour", "day"):
            a = await queries.meter_summary(view, sid, rng)
            b = await queries.meter_summary(direct, sid, rng)
            assert orjson.dumps(a) == orjson.dumps(b), (sid, rng)   # NaN: a chart's gap
    await _compare_fleet(view, writer)
    return served


async def _compare_fleet(view: RedisReader, writer: Writer) -> None:
    """The fleet's per-state windows from memory equal an HMGET of Redis and the brute
    force, for every utility and size over what the fleet pages show."""
    assert view.fleet_version() is not None, "the fleet is not held in memory"
    clock, store = await view.clock(), writer.store
    for u in UTILITIES:
        if u not in clock.newest:
            continue
        for size, n in queries.summary_windows(view.sizes).items():
            starts = queries.aligned(clock.newest[u], size, n)
            got = await view.states(u, size, starts)
            raw = store.client.hmget(store.keys.state(u, size),
                                     [f"{st}:{w}" for st in STATES for w in starts])
            want = codec.decode_values(raw, 0).reshape(len(STATES), len(starts))
            assert got.tobytes() == want.tobytes(), (u, size)
            pairs = [list(zip(r["sum"].tolist(), r["count"].tolist(), strict=True)) for r in got]
            assert pairs == writer.expected_states(u, size, starts), (u, size)


async def test_view_answers_exactly_fresh_late_restarted_and_after_missed_notices(rig):
    config, store, sids, prefix = rig
    writer = Writer(store, sids)
    direct = _source(config, prefix, watch=0)
    fresh = _source(config, prefix, watch=METERS)
    await fresh.refresh()
    fresh.changes.part_rows = 4   # every notice in parts, meters read in between them
    await _caught_up(fresh, store)
    try:
        # 1. watched from the start: meters read in while checkpoints run in a thread
        writing = asyncio.ensure_future(asyncio.to_thread(
            lambda: [writer.checkpoint() for _ in range(150)]))
        rnd = random.Random(3)
        while not writing.done():
            sid = rnd.choice(sids)
            await fresh.meter(sid, [("gas", 60, [writer.t // 60 * 60])])
            fresh.changes.view.clear() if rnd.random() < 0.2 else None   # read in again
            await asyncio.sleep(0.001)
        await writing
        # ... and the race made certain: a notice for a meter committed after its snapshot
        # and applied by the tail before the snapshot is installed (kept for it, replayed)
        for i in range(3):
            changes, key = fresh.changes, meter_key(sids[i])
            changes.view.clear()
            notes = changes.begin(key)
            snapshot = await changes.snapshot(sids[i])
            await asyncio.to_thread(writer.checkpoint, pick=[i])
            await _caught_up(fresh, store)
            changes.end(key, notes)
            changes.install(key, notes, *snapshot)
        assert fresh.changes.caught >= 3
        assert fresh.changes.parts > 0, "no notice was applied in parts"
        await _caught_up(fresh, store)
        assert await _compare(fresh, direct, writer) > 0   # served from memory, not only loaded
        assert fresh.changes.resets == 0

        # 2. started late, and 3. restarted (a new process knows nothing: same as late)
        late = _source(config, prefix, watch=METERS)
        await fresh.close()
        for _ in range(60):
            writer.checkpoint()
        await late.refresh()
        for _ in range(60):
            await asyncio.to_thread(writer.checkpoint)
            await asyncio.sleep(0)
        await _caught_up(late, store)
        await _compare(late, direct, writer)
        fresh = _source(config, prefix, watch=METERS)   # the restart
        await fresh.refresh()
        await _caught_up(fresh, store)
        await _compare(fresh, direct, writer)

        # 4. missed notices: the tail does not run while the stream is trimmed past it
        # (the checkpoints here block this event loop), then it finds the gap
        held_before = len(late.changes.view)
        assert held_before == METERS
        for _ in range(4 * NOTICES_KEPT + 100):
            writer.checkpoint(step=3)
        assert store.client.xlen(store.keys.changes()[0]) < 4 * NOTICES_KEPT + 100
        await _caught_up(late, store)
        assert late.changes.resets >= 1, "the trimmed notices went unnoticed"
        for _ in range(200):   # what it held is read in again in the background
            if len(late.changes.view) == METERS:
                break
            await asyncio.sleep(0.02)
        assert late.changes.reloaded >= METERS
        assert await _compare(late, direct, writer) == METERS   # all from memory

        # 5. missed again while that reload is half way: the view must not shrink to what
        # the interrupted reload had read in (a meter per MULTI here, to catch it midway)
        late.changes.reload_chunk = 1
        midway = None
        for trim in (1, 2):
            for _ in range(4 * NOTICES_KEPT + 100):
                writer.checkpoint(step=3)
            await _caught_up(late, store)
            for _ in range(400):
                if trim == 1 and 0 < len(late.changes.view) < METERS // 2:
                    midway = len(late.changes.view)
                    break                      # midway: miss notices again now
                if trim == 2 and len(late.changes.view) == METERS:
                    break
                await asyncio.sleep(0.005)
        assert midway, "the reload was not caught midway: the test would prove nothing"
        assert late.changes.resets >= 3
        assert len(late.changes.view) == METERS, "the second reset forgot meters"
        assert await _compare(late, direct, writer) == METERS
        await late.close()

        # a view smaller than the fleet: the least recently read leave, answers stay exact
        small = _source(config, prefix, watch=4)
        await small.refresh()
        await _caught_up(small, store)
        await _compare(small, direct, writer)
        for _ in range(30):
            await asyncio.to_thread(writer.checkpoint)
        await _caught_up(small, store)
        await _compare(small, direct, writer)
        assert len(small.changes.view) == 4
        await small.close()
    finally:
        await fresh.close()
        await direct.close()


async def test_a_redis_user_without_multi_still_reads_exactly(rig, unique):
    """A read-only user made before MULTI was granted: no snapshot can be taken, so every
    household and fleet read goes to Redis (said once in the log), with the same answers."""
    config, store, sids, prefix = rig
    writer = Writer(store, sids, seed=5)
    for _ in range(20):
        writer.checkpoint()
    admin = redis.Redis.from_url(config.redis_url)
    user, password = f"nomulti{unique}", f"pw-{unique}-0123456789"
    admin.execute_command("ACL", "SETUSER", user, "reset", "on", f">{password}", "~auth:*",
                          "resetchannels", "-@all", "+@read", "+@connection")
    host, port = admin.connection_pool.connection_kwargs["host"], \
        admin.connection_pool.connection_kwargs["port"]
    url = f"redis://{user}:{password}@{host}:{port}/0"
    limited = RedisReader(url, tuple(s.size for s in config.window_specs()), config.group,
                          config.namespace, pointer=config.pointer, registry_prefix=prefix,
                          watch=METERS)
    direct = _source(config, prefix, watch=0)
    try:
        await limited.refresh()
        await _caught_up(limited, store)
        await direct.refresh()
        clock = await direct.clock()
        for sid in sids[:5]:
            reads = [(u, 60, queries.aligned(clock.newest[u], 60, 60)) for u in UTILITIES]
            assert (await limited.meter(sid, reads))[1][0].tobytes() == \
                (await direct.meter(sid, reads))[1][0].tobytes()
        assert not limited.changes.snapshots and len(limited.changes.view) == 0
        assert limited.fleet_version() is None   # the fleet is read from Redis too
    finally:
        await limited.close()
        await direct.close()
        admin.execute_command("ACL", "DELUSER", user)


async def test_a_namespace_switch_starts_the_view_over(rig, unique):
    """A rebuild's switch moves the pointer: the dashboard follows it to the new
    namespace's stream and forgets what it held, and its answers are the new namespace's."""
    config, store, sids, prefix = rig
    pointer, other = f"auth:ptr{unique}", f"{config.namespace}b"
    new = RedisWindowStore.connect(config.redis_url, other, config.window_specs(),
                                   group=config.group)
    old_writer, new_writer = Writer(store, sids, seed=11), Writer(new, sids, seed=12)
    for _ in range(40):
        old_writer.checkpoint()
        new_writer.checkpoint()
    store.client.set(pointer, config.namespace)
    specs = config.window_specs()
    src = RedisReader(config.redis_url, tuple(s.size for s in specs), config.group, None,
                      pointer=pointer, registry_prefix=prefix, watch=METERS,
                      meter_keep={s.size: s.keep("meter") for s in specs},
                      state_keep={s.size: s.keep("state") for s in specs})
    direct = _source(config, prefix, watch=0)
    try:
        await src.refresh()
        await _caught_up(src, store)
        await _compare(src, direct, old_writer)
        assert len(src.changes.view) == METERS
        store.client.set(pointer, other)   # the switch
        await src.refresh()
        assert src.namespace == other and len(src.changes.view) == 0
        await _caught_up(src, new)
        moved = RedisReader(config.redis_url, tuple(s.size for s in specs), config.group,
                            other, pointer=pointer, registry_prefix=prefix, watch=0)
        try:
            await _compare(src, moved, new_writer)
        finally:
            await moved.close()
    finally:
        await src.close()
        await direct.close()
        store.client.delete(pointer)
        new.drop_namespace()


@pytest.mark.parametrize("rows", [10, 1000, 100_000])
def test_a_notice_cut_by_meter_keeps_every_record_once_and_each_meter_in_one_part(rows):
    """Against a brute force: each part holds, per block, exactly the block's records
    whose meter key falls in its range, in the block's order; no meter spans two parts."""
    rnd = np.random.default_rng(7)
    meters = rnd.integers(0, 2**63, 3000, dtype=np.int64).astype(np.uint64) << np.uint64(1)
    blocks = []
    for utility, size, n in (("electricity", 60, 9000), ("electricity", 3600, 3000),
                             ("gas", 60, 5000)):
        records = np.zeros(n, codec.CHANGE)
        records["k0"] = rnd.choice(meters, n)
        records["ws"] = np.arange(n)   # the block's order, to check it is kept
        blocks.append((utility, size, records))
    parts = list(by_meter(blocks, rows))
    total = sum(len(r) for *_, r in blocks)
    assert len(parts) == 1 << (total // rows).bit_length()
    owner: dict[int, int] = {}
    for i, part in enumerate(parts):
        assert [(u, z) for u, z, _ in part] == [(u, z) for u, z, _ in blocks]
        for *_, got in part:
            assert (np.diff(got["ws"]) > 0).all()
            for k in set(got["k0"].tolist()):
                assert owner.setdefault(k, i) == i, "a meter in two parts"
    for b, (_, _, records) in enumerate(blocks):
        kept = np.concatenate([part[b][2] for part in parts])
        assert sorted(kept["ws"].tolist()) == records["ws"].tolist()
