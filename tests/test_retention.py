"""Retention is exact (WindowSpec.retention_cut): per key, with N its newest window_start,
nothing at or before floor((N - retention) / size) * size survives a checkpoint, for any
retention and any sparsity. Checked against real Redis and a brute force; the embedded
store keeps the same windows."""

from __future__ import annotations

import random

import numpy as np
import pytest
import redis

from auth_kappa import Engine
from auth_kappa.state.redis_store import RedisWindowStore
from auth_kappa.topology.keys import uuid_keys
from auth_kappa.topology.schema import STATES
from auth_kappa.topology.window_table import Rows
from auth_kappa.topology.windows import WindowSpec
from tests.support.epoch import epoch

SIZE = 60
T0 = 1772409600


def _cut(newest: int, retention: int) -> int:
    return (newest - retention) // SIZE * SIZE


def _rows(k0, k1, ws, sums, seen_words: int = 0, new=None, cont=None, part=None) -> Rows:
    n = len(ws)
    s = np.asarray(sums, np.float64)
    return Rows(np.asarray(k0, np.uint64), np.asarray(k1, np.uint64), np.asarray(ws, np.int64),
                s, np.ones(n, np.int64), s.copy(), s.copy(),
                np.zeros((n, seen_words), np.uint64) if seen_words else None,
                None if new is None else np.asarray(new, bool),
                None if part is None else np.full(n, part, np.int64),
                cont=None if cont is None else np.asarray(cont, bool))


@pytest.fixture
def store(stack, unique):
    s = None

    def make(retention: int, meter_retention: int) -> RedisWindowStore:
        nonlocal s
        s = RedisWindowStore(redis.Redis.from_url(stack.redis_url), f"ret{unique}",
                             (WindowSpec(SIZE, retention, meter_retention),), group=unique)
        return s
    yield make
    if s is not None:
        s.drop_namespace()


def _steps(rng: random.Random, n: int):
    """Event time that mostly advances a window at a time, sometimes stalls, sometimes
    jumps far (a silent hour), with late windows a little behind the newest."""
    newest = T0
    for _ in range(n):
        r = rng.random()
        newest += SIZE * (0 if r < 0.2 else 1 if r < 0.8 else rng.randint(2, 5)
                          if r < 0.97 else 90)
        yield newest


@pytest.mark.stack
@pytest.mark.parametrize("retention", [90, 120, 150, 3600])
def test_state_retention_is_exact_for_sparse_states(store, retention):
    s = store(retention, 120)
    rng = random.Random(retention)
    key = s.state_key("gas", SIZE)
    # a field from before this rule (no companion key yet): the first call must sweep it
    s.client.hset(key, "XX:0", b"\0" * 32)
    truth: dict[tuple[str, int], tuple[float, int]] = {}
    newest = 0
    for now in _steps(rng, 160):
        # sparse: a few common states, a rare one now and then; some windows a bit late
        codes = rng.sample(range(6), rng.randint(1, 3)) + \
            ([rng.randrange(6, len(STATES))] if rng.random() < 0.1 else [])
        ws = [now - SIZE * (rng.random() < 0.3) * rng.randint(1, 3) for _ in codes]
        sums = [rng.randint(1, 9) / 4 for _ in codes]
        s.checkpoint({("gas", "state", SIZE): _rows(codes, [0] * len(codes), ws, sums)}, {}, {})
        newest = max([newest, *ws])
        for c, w, v in zip(codes, ws, sums, strict=True):
            acc = truth.get((STATES[c], w), (0.0, 0))
            truth[(STATES[c], w)] = (acc[0] + v, acc[1] + 1)
        cut = _cut(newest, retention)
        want = {f"{st}:{w}": sc for (st, w), sc in truth.items() if w > cut}
        got = s.read_windows("state", "gas", SIZE)
        have = {f"{k}:{w}": (sm, c) for k, w, sm, c in
                zip(got["key"], got["window_start"], got["sum"], got["count"], strict=True)}
        assert have == want, f"after newest={newest} (cut {cut})"


@pytest.mark.stack
@pytest.mark.parametrize("retention", [90, 120, 300])
@pytest.mark.parametrize("runs", [False, True], ids=["script", "runs"])
@pytest.mark.parametrize("indexed", [False, True], ids=["unplaced", "indexed"])
def test_meter_retention_is_exact_for_sparse_meters(store, retention, runs, indexed):
    """runs: each row says whether the store holds its predecessor (Rows.cont, as the
    window table does), and those are trimmed by plain HDELs, the rest by the script.
    indexed: the rows come from a partition whose meter set the store read (as a worker's
    assignment does), so a meter's first window skips the script; half-way a new store
    (a restarted worker) reads the set again and its meters are known."""
    s = store(48 * 3600, retention)
    rng = random.Random(retention + 1)
    sids = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(6)]
    keys, _ = uuid_keys(np.array(sids, "S36"))
    written: dict[int, set[int]] = {i: set() for i in range(len(sids))}
    if indexed:
        s.indexed_meters("water", 0)
    for step, now in enumerate(_steps(rng, 160)):
        if indexed and step == 80:
            s = RedisWindowStore(s.client, s.namespace, s.windows, group=s.group)
            assert len(s.indexed_meters("water", 0)[0]) == \
                sum(bool(w) for w in written.values())
        # each meter reports with its own sparsity: every window, every few, rarely
        who = [i for i in range(len(sids)) if rng.random() < (1.0, 0.5, 0.2, 0.05, 1, 1)[i]]
        ws = [now - SIZE * (rng.random() < 0.2) * rng.randint(1, 4) for _ in who]
        new = [w not in written[i] for i, w in zip(who, ws, strict=True)]
        cont = [w - SIZE in written[i] for i, w in zip(who, ws, strict=True)] if runs else None
        rows = _rows(keys[who, 0], keys[who, 1], ws, [1.0] * len(who), s.words(SIZE), new,
                     cont, 0 if indexed else None)
        s.checkpoint({("water", "meter", SIZE): rows}, {}, {})
        for i, w in zip(who, ws, strict=True):
            written[i].add(w)
        for i, sid in enumerate(sids):
            if not written[i]:
                continue
            cut = _cut(max(written[i]), retention)
            written[i] = {w for w in written[i] if w > cut}
            have = {int(f) for f in s.client.hkeys(s.meter_key(sid, "water", SIZE))}
            assert have == written[i], f"meter {i} after newest={max(written[i])} (cut {cut})"


def test_embedded_store_keeps_what_redis_keeps():
    """Same rule in memory: each meter's own newest window; a utility's states together."""
    eng = Engine.embedded("1m", "0s", retention="150s", meter_retention="90s")
    lines = []
    sids = [f"00000000-0000-4000-8000-0000000000a{i}" for i in range(3)]
    for minute in range(30):
        for i, sid in enumerate(sids):
            if minute % (1, 4, 25)[i] == 0 and not (i == 0 and minute > 20):
                end = T0 + minute * SIZE + 5
                state = ("CA", "NY", "TX")[i]
                lines.append(f"{sid},u{i},household,{end - 5},{state},0.5,{end}")
    eng.ingest(lines, utility="water")
    eng.flush()
    meters = {sid: set(epoch(eng.windows(level="meter", utility="water", window="1m",
                                         key=sid)["window_start"]).tolist()) for sid in sids}
    for i, sid in enumerate(sids):
        starts = {T0 + m * SIZE for m in range(30)
                  if m % (1, 4, 25)[i] == 0 and not (i == 0 and m > 20)}
        assert meters[sid] == {w for w in starts if w > _cut(max(starts), 90)}, sid
    states = eng.windows(level="state", utility="water", window="1m")
    state_starts = epoch(states["window_start"])
    newest = int(state_starts.max())
    assert newest == T0 + 28 * SIZE   # meter 1, every 4th minute; nobody in minute 29
    assert set(state_starts.tolist()) == {T0 + m * SIZE for m in range(29)
                                           if m <= 20 or m % 4 == 0 or m == 25
                                           if T0 + m * SIZE > _cut(newest, 150)}


@pytest.mark.stack
def test_first_values_left_behind_go_with_a_sweep(store):
    """First values a crash or a rebalance left behind (their deletion rides a later
    checkpoint: runtime/live.py _settle; the next owner sweeps them too, see
    test_store_parity) obey the meter windows' cut when a window after a gap sweeps the
    meter (trim_meters.lua); an open window's stay."""
    s = store(48 * 3600, 120)
    sid = "00000000-0000-4000-8000-0000000000f1"
    keys, _ = uuid_keys(np.array([sid], "S36"))
    fkey = s.first_key(sid, "water", SIZE)

    def write(ws: int) -> None:
        rows = _rows(keys[:, 0], keys[:, 1], [ws], [1.0], s.words(SIZE), [True], [False])
        s.checkpoint({("water", "meter", SIZE): rows}, {}, {})

    write(T0)
    s.client.hset(fkey, mapping={str(T0): b"x", str(T0 + 2 * SIZE): b"x",
                                 str(T0 + 10 * SIZE): b"x"})
    write(T0 + 10 * SIZE)    # after a gap: swept up to its cut, T0 + 8 minutes
    assert s.client.hkeys(fkey) == [str(T0 + 10 * SIZE).encode()]


def test_runs_reach_the_checkpoint_as_the_window_table_saw_them():
    """`cont` survives the runtime's checkpoint path (final and open rows concatenated,
    split by partition): a new window is a run exactly when its meter's window before it
    was held, whether that one is still open, final in the same checkpoint, or written by
    an earlier one; a meter's first window and one after a gap are not."""
    from auth_kappa.testing import TopologyTestDriver
    from auth_kappa.topology.keys import uuid_text

    drv = TopologyTestDriver(windows=("1m",), grace="0s")
    runtime, seen = drv.runtime, {}
    prepare = runtime.prepare

    def spy(*args, **kwargs):
        todo = prepare(*args, **kwargs)
        for commit in todo:
            rows = commit.dirty.get(("water", "meter", SIZE))
            if rows is not None and rows.new is not None:
                for sid, ws, new, cont in zip(uuid_text(rows.k0, rows.k1), rows.window_start,
                                              rows.new, rows.cont, strict=True):
                    if new:
                        seen[(sid, int(ws))] = bool(cont)
        return todo

    runtime.prepare = spy
    sids = [f"00000000-0000-4000-8000-00000000c0{i:02d}" for i in range(3)]
    minutes = {0: (0, 1, 2, 3), 1: (0, 2, 3), 2: (1, 2)}   # meter -> minutes it reports
    for pipe in ((0,), (1, 2), (3,)):                     # minutes fed per pipe()
        lines = [f"{sid},u,household,{T0 + m * SIZE + s - 5},CA,0.25,{T0 + m * SIZE + s}"
                 for m in pipe for s in range(5, 60, 5)
                 for i, sid in enumerate(sids) if m in minutes[i]]
        drv.pipe("water", lines)
    want = {(sids[i], T0 + m * SIZE): m - 1 in ms for i, ms in minutes.items() for m in ms}
    assert seen == want


@pytest.mark.stack
def test_a_reporting_meter_key_renews_its_ttl_hourly(store):
    """A meter key's TTL (retention + a day) is set by a window that starts a run and
    renewed by the first new window of each hour, not by every new minute."""
    s = store(48 * 3600, 7200)
    sid = "00000000-0000-4000-8000-0000000000e1"
    keys, _ = uuid_keys(np.array([sid], "S36"))
    key = s.meter_key(sid, "water", SIZE)
    hour = T0 // 3600 * 3600 + 3600

    def write(ws: int, cont: bool) -> int:
        rows = _rows(keys[:, 0], keys[:, 1], [ws], [1.0], s.words(SIZE), [True], [cont])
        s.checkpoint({("water", "meter", SIZE): rows}, {}, {})
        return s.client.ttl(key)

    assert write(hour - 3 * SIZE, cont=False) > 7200 + 86400 - 60   # a run starts
    s.client.expire(key, 100)
    assert write(hour - 2 * SIZE, cont=True) <= 100                  # same hour: left as is
    assert write(hour - SIZE, cont=True) <= 100
    assert write(hour, cont=True) > 7200 + 86400 - 60                # a new hour: renewed
    s.client.expire(key, 100)
    assert write(hour + 5 * SIZE, cont=False) > 100                  # after a gap: renewed
