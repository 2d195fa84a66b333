"""Checkpoints commit one Redis transaction per partition, and stay exact across a crash
between two of them (runtime/commits.py)."""

from __future__ import annotations

import logging
import uuid

import numpy as np
import pandas as pd
import pytest

from auth_kappa.config import Config
from auth_kappa.runtime.live import LiveRuntime
from auth_kappa.state.redis_store import RedisWindowStore
from auth_kappa.topology.decode import Message
from auth_kappa.topology.processor import Topology

T0 = 1_772_409_600
STATES = ("WA", "OR", "CA")


def _readings(meters: int, minutes: int, seed: int) -> pd.DataFrame:
    """One reading per meter every 5 s, 3 % sent twice; meter i lives on partition i % 2."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(meters):
        sid = str(uuid.UUID(int=1000 + i, version=4))
        for k in range(minutes * 12):
            end = T0 + 5 * k + 5
            rows.append((sid, i % 2, STATES[i % 3], round(float(rng.uniform(0, 2)), 4), end))
    df = pd.DataFrame(rows, columns=["sid", "partition", "state", "value", "end_ts"])
    dup = df.sample(frac=0.03, random_state=seed)
    df = pd.concat([df, dup]).sample(frac=1.0, random_state=seed + 1)
    return df.sort_values("end_ts", kind="stable").reset_index(drop=True)


def _messages(df: pd.DataFrame) -> dict[int, list[Message]]:
    out: dict[int, list[Message]] = {}
    for r in df.itertuples():
        line = f"{r.sid},A,household,{r.end_ts - 5},{r.state},{r.value},{r.end_ts}".encode()
        box = out.setdefault(r.partition, [])
        box.append(Message(line, r.partition, len(box)))
    return out


def _expected(df: pd.DataFrame, size: int) -> pd.DataFrame:
    once = df.drop_duplicates(["sid", "end_ts"]).copy()
    once["window_start"] = (once["end_ts"] // size) * size
    g = once.groupby(["state", "window_start"])["value"].agg(["sum", "count"])
    return g.reset_index().rename(columns={"state": "key"})


def _runtime(store: RedisWindowStore, specs) -> LiveRuntime:
    rt = LiveRuntime(Topology(specs, grace=30), store, emit=lambda *a: None,
                     commit_interval=3600)
    rt.assign([("gas", 0), ("gas", 1)])
    return rt


def _feed(rt: LiveRuntime, msgs: dict[int, list[Message]], start: dict[int, int],
          upto: float, step: int = 50) -> None:
    """Both partitions in turns, `step` messages at a time, up to fraction `upto`."""
    ends = {p: int(len(m) * upto) for p, m in msgs.items()}
    pos = dict(start)
    while any(pos[p] < ends[p] for p in msgs):
        for p, m in msgs.items():
            if pos[p] < ends[p]:
                rt.process("gas", m[pos[p]:min(pos[p] + step, ends[p])])
                pos[p] = min(pos[p] + step, ends[p])


def _check(store: RedisWindowStore, df: pd.DataFrame) -> None:
    for size in (60, 3600):
        got = store.read_windows("state", "gas", size)
        want = _expected(df, size)
        assert got["count"].sum() == want["count"].sum()
        merged = want.merge(got, on=["key", "window_start"], how="outer",
                            suffixes=("_want", "_got"))
        assert (merged["count_want"] == merged["count_got"]).all(), merged
        np.testing.assert_allclose(merged["sum_got"], merged["sum_want"], rtol=1e-9)
    sid = df["sid"].iloc[0]
    mine = df[df["sid"] == sid].drop_duplicates("end_ts")
    meter = store.read_windows("meter", "gas", 60, key=sid)
    want = mine.groupby(mine["end_ts"] // 60 * 60)["value"].agg(["sum", "count"])
    assert meter["count"].tolist() == want["count"].tolist()
    stats = store.stats()
    assert stats["accepted:gas"] == len(df.drop_duplicates(["sid", "end_ts"]))


@pytest.mark.stack
def test_each_partition_commits_alone_and_a_crash_between_them_stays_exact(stack, unique):
    specs = Config.load(windows="1m,1h").window_specs()
    store = RedisWindowStore.connect(stack.redis_url, f"part{unique}", specs)
    df = _readings(meters=30, minutes=20, seed=7)
    msgs = _messages(df)
    calls: list[dict] = []
    real = store.checkpoint

    def recording(dirty, offsets, highs, generations=None, stats=None):
        calls.append(dict(offsets))
        if len(calls) == crash_at[0]:
            raise ConnectionError("injected: the worker died between two transactions")
        return real(dirty, offsets, highs, generations, stats)

    crash_at = [0]
    store.checkpoint = recording
    try:
        rt = _runtime(store, specs)
        _feed(rt, msgs, {0: 0, 1: 0}, 0.4)
        rt.checkpoint()
        assert len(calls) == 2 and all(len(c) == 1 for c in calls)  # one per partition
        assert {next(iter(c)) for c in calls} == {"gas:0", "gas:1"}
        before = store.offsets()

        _feed(rt, msgs, {p: before[f"gas:{p}"] for p in (0, 1)}, 0.7)
        crash_at[0] = len(calls) + 2          # the first partition lands, the second not
        with pytest.raises(ConnectionError):
            rt.checkpoint()
        after = store.offsets()
        landed = [p for p in after if after[p] != before[p]]
        assert len(landed) == 1               # a cut between the two transactions

        store.checkpoint = real               # a new worker takes over from Redis
        rt = _runtime(store, specs)
        seek = rt.assign([("gas", 0), ("gas", 1)])
        _feed(rt, msgs, {p: seek[("gas", p)] for p in (0, 1)}, 1.0)
        rt.checkpoint()
        _check(store, df)
    finally:
        store.drop_namespace()


@pytest.mark.stack
def test_a_meter_on_two_partitions_falls_back_to_one_transaction(stack, unique, caplog):
    specs = Config.load(windows="1m").window_specs()
    store = RedisWindowStore.connect(stack.redis_url, f"mixed{unique}", specs)
    df = _readings(meters=6, minutes=5, seed=3)
    df.loc[df.index % 7 == 0, "partition"] = 1 - df.loc[df.index % 7 == 0, "partition"]
    msgs = _messages(df)
    calls: list[dict] = []
    real = store.checkpoint

    def recording(dirty, offsets, highs, generations=None, stats=None):
        calls.append(dict(offsets))
        return real(dirty, offsets, highs, generations, stats)

    store.checkpoint = recording
    try:
        rt = _runtime(store, specs)
        with caplog.at_level(logging.WARNING, logger="auth_kappa.live"):
            _feed(rt, msgs, {0: 0, 1: 0}, 1.0)
            rt.checkpoint()
        assert calls == [{"gas:0": len(msgs[0]), "gas:1": len(msgs[1])}]
        assert "more than one partition" in caplog.text
        got = store.read_windows("state", "gas", 60)
        want = _expected(df, 60)
        assert got["count"].tolist() == want["count"].tolist()
    finally:
        store.drop_namespace()


@pytest.mark.stack
def test_windows_open_at_a_crash_are_published_when_they_close(stack, unique):
    """Meter A reports minute 0, then falls silent; the worker dies before minute 0 is
    final. Its successor never sees a reading of A, yet must publish A's minute-0 window
    (and A's hour) to the `windows` topic when the watermark closes them."""
    from auth_kappa.topology.frames import read_ipc
    from auth_kappa.topology.keys import uuid_text

    specs = Config.load(windows="1m,1h").window_specs()
    store = RedisWindowStore.connect(stack.redis_url, f"reopen{unique}", specs)
    a, b = (str(uuid.UUID(int=n, version=4)) for n in (501, 502))

    def line(sid: str, end: int, value: float) -> bytes:
        return f"{sid},A,household,{end - 5},WA,{value},{end}".encode()

    first = [line(a, T0 + 5 * k, 0.5) for k in range(12)] + \
        [line(b, T0 + 5 * k, 1.0) for k in range(9)]             # up to T0+40: not final
    later = [line(b, T0 + 60 + 5 * k, 1.0) for k in range(0, 12 * 62)]   # past the hour
    sent: list[bytes] = []

    def runtime() -> LiveRuntime:
        rt = LiveRuntime(Topology(specs, grace=30), store,
                         emit=lambda topic, key, value, headers:
                         sent.append(value) if topic == "windows" else None,
                         commit_interval=3600)
        rt.assign([("gas", 0)])
        return rt

    try:
        rt = runtime()
        rt.process("gas", [Message(v, 0, i) for i, v in enumerate(first)])
        rt.checkpoint()
        assert sent == []                     # nothing final yet; then the worker dies
        rt = runtime()
        rt.process("gas", [Message(v, 0, len(first) + i) for i, v in enumerate(later)])
        rt.checkpoint()
        frames = pd.concat([read_ipc(v).to_pandas() for v in sent])
        mine = frames[frames["key"] == a].set_index("window_end")
        assert mine.loc[T0 + 60, "count"] == 12 and mine.loc[T0 + 60, "sum"] == 6.0
        assert mine.loc[T0 + 3600, "count"] == 12     # A's hour, also never touched again
        k0, k1 = store.indexed_meters("gas", 0)   # the partition's meter index
        assert sorted(uuid_text(k0, k1)) == sorted([a, b])
    finally:
        store.drop_namespace()

