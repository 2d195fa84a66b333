"""One suite, two stores (state/protocol.py WindowStore): the memory store and the Redis
store (the real one, a namespace of its own) must checkpoint, fence, reopen and retain
alike. Every expectation is computed here from the inputs (a brute force over the
readings, the retention rule written out), never taken from the other store."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest
import redis

from auth_kappa.runtime.live import LiveRuntime
from auth_kappa.state.memory import MemoryWindowStore
from auth_kappa.state.protocol import WindowStore
from auth_kappa.state.redis_store import Fenced, RedisWindowStore, RolledBack
from auth_kappa.topology.keys import uuid_keys, uuid_text
from auth_kappa.topology.processor import Topology
from auth_kappa.topology.schema import STATES
from auth_kappa.topology.window_table import UNKNOWN, Rows, fingerprint
from auth_kappa.topology.windows import WindowSpec
from tests.support.partitioned import check, feed, messages, readings

SPECS = (WindowSpec(60, 7 * 86400, 86400), WindowSpec(3600, 7 * 86400, 86400))
T0 = 1_772_409_600
SIDS = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(4)]
KEYS, _ = uuid_keys(np.array(SIDS, "S36"))


@pytest.fixture(params=["memory", "redis"])
def make(request, unique):
    """make(specs) -> a fresh store of the parametrized kind (Redis: dropped after)."""
    made: list[RedisWindowStore] = []

    def new(specs: tuple[WindowSpec, ...] = SPECS) -> WindowStore:
        if request.param == "memory":
            return MemoryWindowStore(specs)
        url = request.getfixturevalue("stack").redis_url
        s = RedisWindowStore(redis.Redis.from_url(url), f"par{unique}{len(made)}", specs,
                             group=unique)
        made.append(s)
        return s
    yield new
    for s in made:
        s.drop_namespace()


def _runtime(store: WindowStore) -> LiveRuntime:
    """The live runtime over either store; insights off (their state is Redis-only)."""
    rt = LiveRuntime(Topology(SPECS, grace=30), store, emit=lambda *a: None,
                     commit_interval=3600, insights=None)
    rt.place({"gas": 2})
    rt.assign([("gas", 0), ("gas", 1)])
    return rt


def _states(codes, ws, sums) -> Rows:
    s = np.asarray(sums, np.float64)
    return Rows(np.asarray(codes, np.uint64), np.zeros(len(s), np.uint64),
                np.asarray(ws, np.int64), s, np.ones(len(s), np.int64), s.copy(), s.copy(),
                None)


def _meters(which, ws, sums, size: int, finest: bool) -> Rows:
    s = np.asarray(sums, np.float64)
    n = len(s)
    words = -(-size // 64) if finest else 0
    return Rows(KEYS[which, 0], KEYS[which, 1], np.asarray(ws, np.int64), s,
                np.ones(n, np.int64), s.copy(), s.copy(),
                np.zeros((n, words), np.uint64) if words else None,
                new=np.ones(n, bool), part=np.zeros(n, np.int32))


def _table(df: pd.DataFrame) -> dict[tuple[str, int], tuple[float, int]]:
    return {(k, int(w)): (round(float(s), 9), int(c)) for k, w, s, c in
            zip(df["key"], df["window_start"], df["sum"], df["count"], strict=True)}


def test_both_stores_keep_the_contract(make):
    """Every method of the protocol, with its parameters in the same order and defaults."""
    store = make()
    assert isinstance(store, WindowStore)
    for name, member in vars(WindowStore).items():
        if callable(member) and not name.startswith("_"):
            want = list(inspect.signature(member).parameters.values())[1:]
            have = list(inspect.signature(getattr(store, name)).parameters.values())
            assert [(p.name, p.default) for p in have] == \
                [(p.name, p.default) for p in want], name


def test_checkpoint_then_read_back(make):
    """The live runtime's checkpoint lands whole: windows equal a brute force over the
    readings, offsets are each partition's message count, clocks its newest end_ts."""
    store = make()
    df = readings(meters=24, minutes=12, seed=3)
    msgs = messages(df)
    rt = _runtime(store)
    feed(rt, msgs, {0: 0, 1: 0}, 1.0)
    rt.checkpoint()
    check(store, df)
    assert store.offsets() == {f"gas:{p}": len(m) for p, m in msgs.items()}
    assert store.highs() == {f"gas:{p}": int(g["end_ts"].max())
                             for p, g in df.groupby("partition")}
    assert store.watermarks() == {"gas": float(df.groupby("partition")["end_ts"].max().min())}


def test_a_stale_owner_is_fenced_and_writes_nothing(make):
    store = make()
    old = store.claim(["gas:0"])
    rows = {("gas", "state", 60): _states([0], [T0], [1.5])}
    store.checkpoint(rows, {"gas:0": 5}, {"gas:0": T0 + 10}, old)
    new = store.claim(["gas:0"])   # another worker took the partition
    assert new == {"gas:0": old["gas:0"] + 1}
    with pytest.raises(Fenced) as err:
        store.checkpoint(rows, {"gas:0": 9}, {"gas:0": T0 + 20}, old)
    assert err.value.partitions == ["gas:0"]
    assert store.offsets() == {"gas:0": 5} and store.highs() == {"gas:0": T0 + 10}
    assert _table(store.read_windows("state", "gas", 60)) == {(STATES[0], T0): (1.5, 1)}
    ahead = {"gas:0": new["gas:0"] + 1}   # a claim the store no longer holds
    with pytest.raises(RolledBack):
        store.checkpoint(rows, {"gas:0": 9}, {"gas:0": T0 + 20}, ahead)
    store.checkpoint(rows, {"gas:0": 9}, {"gas:0": T0 + 20}, new)   # the owner writes
    assert store.offsets() == {"gas:0": 9}
    assert _table(store.read_windows("state", "gas", 60)) == {(STATES[0], T0): (3.0, 2)}


def test_a_restarted_owner_reopens_and_ends_at_the_brute_force(make):
    """Half the input, a checkpoint, a new runtime (memory dropped) over the same store:
    it resumes at the stored offsets, reloads open windows (their dedup bits too: resends
    across the restart are not counted twice), and the end equals the brute force."""
    store = make()
    df = readings(meters=24, minutes=12, seed=5)
    msgs = messages(df)
    first = _runtime(store)
    feed(first, msgs, {0: 0, 1: 0}, 0.5)
    first.checkpoint()
    resent = {p: max(0, len(m) // 2 - 40) for p, m in msgs.items()}  # replay a little
    second = _runtime(store)
    seek = {p: second.next_offset("gas", p) for p in (0, 1)}
    assert seek == {p: len(m) // 2 for p, m in msgs.items()}
    assert sum(len(t) for t in second.topology.tables.values()) > 0   # reopened
    feed(second, msgs, resent, 1.0)   # at-least-once: some messages come again
    second.checkpoint()
    check(store, df)


def test_the_loader_gives_back_what_was_stored_and_no_newer(make):
    """What a restart reloads: stored values, dedup bits and first values of windows up to
    the clock; later windows (and unknown meters) start empty; state deltas never load."""
    store = make()
    rows = _meters([0, 1, 1], [T0, T0, T0 + 60], [1.25, 2.5, 4.0], 60, True)
    rows.seen[:, 0] = np.uint64(1) << np.uint64(5)          # second 5 of each window
    rows.first = np.full((3, 64), UNKNOWN, np.uint64)
    rows.first[:, 5] = fingerprint(rows.sum)
    store.checkpoint({("gas", "meter", 60): rows}, {"gas:0": 3}, {"gas:0": T0 + 65})
    load = store.loader(("gas", "meter", 60), newer_than=T0)
    pick = [0, 1, 1, 2]
    got = load(KEYS[pick, 0], KEYS[pick, 1], np.array([T0, T0, T0 + 60, T0], np.int64))
    assert got["sum"].tolist() == [1.25, 2.5, 0.0, 0.0]
    assert got["count"].tolist() == [1, 1, 0, 0]
    assert got["stored"].tolist() == [True, True, False, False]
    assert got["seen"][:, 0].tolist() == [32, 32, 0, 0]
    assert got["first"][:, 5].tolist() == [*fingerprint([1.25, 2.5]).tolist(),
                                           int(UNKNOWN), int(UNKNOWN)]
    assert (got["first"][:, :5] == UNKNOWN).all()
    assert store.loader(("gas", "state", 60), newer_than=T0) is None
    k0, k1 = store.indexed_meters("gas", 0)
    assert uuid_text(k0, k1).tolist() == sorted(SIDS[:2])


def test_retention_cut_per_key(make):
    """Per meter, its own newest window; per utility, every state together:
    nothing at or before floor((N - retention) / size) * size remains."""
    spec = WindowSpec(60, 150, 90)
    store = make((spec,))
    sent: dict[int, set[int]] = {i: set() for i in range(len(SIDS))}
    states: dict[tuple[int, int], float] = {}
    for step in range(12):
        now = T0 + 60 * step
        who = [i for i in range(len(SIDS)) if step % (1, 2, 5, 11)[i] == 0]
        ws = [now] * len(who)
        store.checkpoint({("gas", "meter", 60): _meters(who, ws, [1.0] * len(who), 60, True)},
                         {}, {})
        for i in who:
            sent[i].add(now)
        codes = [step % 3, 7] if step % 4 == 0 else [step % 3]
        store.checkpoint({("gas", "state", 60): _states(codes, [now] * len(codes),
                                                        [0.5] * len(codes))}, {}, {})
        for c in codes:
            states[(c, now)] = states.get((c, now), 0.0) + 0.5
    for i, sid in enumerate(SIDS):
        cut = (max(sent[i]) - 90) // 60 * 60
        got = set(store.read_windows("meter", "gas", 60, key=sid)["window_start"].tolist())
        assert got == {w for w in sent[i] if w > cut}, sid
    cut = (max(w for _, w in states) - 150) // 60 * 60
    want = {(STATES[c], w): (v, int(v / 0.5)) for (c, w), v in states.items() if w > cut}
    assert _table(store.read_windows("state", "gas", 60)) == want


def test_a_checkpoint_sent_twice_counts_once(make):
    """Meter windows are absolute, so writing them again changes nothing; state deltas
    are not, so a second send is refused by the offsets it expected (RolledBack)."""
    store = make()
    meters = {("gas", "meter", 3600): _meters([0, 1], [T0, T0], [2.0, 3.0], 3600, False)}
    for _ in range(2):
        store.checkpoint(meters, {"gas:0": 4}, {"gas:0": T0 + 5})
    assert _table(store.read_windows("meter", "gas", 3600, key=SIDS[1])) == \
        {(SIDS[1], T0): (3.0, 1)}
    deltas = {("gas", "state", 3600): _states([2], [T0], [2.5])}
    store.checkpoint(deltas, {"gas:0": 7}, {"gas:0": T0 + 9}, expected={"gas:0": 4})
    with pytest.raises(RolledBack):
        store.checkpoint(deltas, {"gas:0": 7}, {"gas:0": T0 + 9}, expected={"gas:0": 4})
    assert store.offsets() == {"gas:0": 7}
    assert _table(store.read_windows("state", "gas", 3600)) == {(STATES[2], T0): (2.5, 1)}


def test_a_new_owner_drops_first_values_left_behind(make):
    """A final window's first values are deleted by a checkpoint after the one that made
    it final (spread: runtime/live.py _settle); the worker died in between. The next
    owner of the partition deletes them as it takes it; an open window's stay."""
    from auth_kappa.topology.decode import Message

    store = make()
    sid = SIDS[0]

    def line(end: int) -> bytes:
        return f"{sid},A,household,{end - 5},WA,0.5,{end}".encode()

    rt = _runtime(store)
    rt.cleanup_rate, rt.cleanup_limit = 0, 10**9       # no cleanup until `everything`
    rt.process("gas", [Message(line(T0 + 10), 0, 0)])
    rt.submit(rt.prepare(), wait=True)                 # minute 0 open: its firsts stored
    rt.process("gas", [Message(line(T0 + 130), 0, 1)])  # minute 0 final, minute 2 open
    rt.submit(rt.prepare(), wait=True)                 # ... and then the worker dies
    load = store.loader(("gas", "meter", 60), newer_than=T0 + 3600)
    k0, k1 = KEYS[[0, 0], 0], KEYS[[0, 0], 1]
    starts = np.array([T0, T0 + 120], np.int64)

    def firsts() -> list[bool]:
        return (load(k0, k1, starts)["first"] != UNKNOWN).any(axis=1).tolist()

    assert firsts() == [True, True]
    _runtime(store)                                    # its successor takes partition 0
    assert firsts() == [False, True]
    assert store.read_windows("meter", "gas", 60, key=sid)["count"].tolist() == [1, 1]

