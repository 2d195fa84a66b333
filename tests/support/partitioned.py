"""Readings for two partitions (each meter where Kafka's key partitioner puts it, as a
Redis Cluster store requires) fed to a LiveRuntime, and the brute-force check of what
Redis then holds: shared by the checkpoint and recovery tests."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd

from auth_kappa.runtime.live import LiveRuntime
from auth_kappa.state.redis_store import RedisWindowStore
from auth_kappa.topology.decode import Message
from auth_kappa.topology.partitioner import partitions_of
from auth_kappa.topology.processor import Topology

T0 = 1_772_409_600
STATES = ("WA", "OR", "CA")


def readings(meters: int, minutes: int, seed: int) -> pd.DataFrame:
    """One reading per meter every 5 s, 3 % sent twice; a meter lives on the partition its
    key hashes to (of 2)."""
    rng = np.random.default_rng(seed)
    rows = []
    sids = [str(uuid.UUID(int=1000 + i, version=4)) for i in range(meters)]
    parts = partitions_of([s.encode() for s in sids], 2).tolist()
    for i, sid in enumerate(sids):
        for k in range(minutes * 12):
            end = T0 + 5 * k + 5
            rows.append((sid, parts[i], STATES[i % 3], round(float(rng.uniform(0, 2)), 4), end))
    df = pd.DataFrame(rows, columns=["sid", "partition", "state", "value", "end_ts"])
    dup = df.sample(frac=0.03, random_state=seed)
    df = pd.concat([df, dup]).sample(frac=1.0, random_state=seed + 1)
    return df.sort_values("end_ts", kind="stable").reset_index(drop=True)


def messages(df: pd.DataFrame) -> dict[int, list[Message]]:
    out: dict[int, list[Message]] = {}
    for r in df.itertuples():
        line = f"{r.sid},A,household,{r.end_ts - 5},{r.state},{r.value},{r.end_ts}".encode()
        box = out.setdefault(r.partition, [])
        box.append(Message(line, r.partition, len(box)))
    return out


def expected(df: pd.DataFrame, size: int) -> pd.DataFrame:
    once = df.drop_duplicates(["sid", "end_ts"]).copy()
    once["window_start"] = (once["end_ts"] // size) * size
    g = once.groupby(["state", "window_start"])["value"].agg(["sum", "count"])
    return g.reset_index().rename(columns={"state": "key"})


def runtime(store: RedisWindowStore, specs) -> LiveRuntime:
    rt = LiveRuntime(Topology(specs, grace=30), store, emit=lambda *a: None,
                     commit_interval=3600)
    rt.place({"gas": 2})
    rt.assign([("gas", 0), ("gas", 1)])
    return rt


def feed(rt: LiveRuntime, msgs: dict[int, list[Message]], start: dict[int, int],
          upto: float, step: int = 50) -> None:
    """Both partitions in turns, `step` messages at a time, up to fraction `upto`."""
    ends = {p: int(len(m) * upto) for p, m in msgs.items()}
    pos = dict(start)
    while any(pos[p] < ends[p] for p in msgs):
        for p, m in msgs.items():
            if pos[p] < ends[p]:
                rt.process("gas", m[pos[p]:min(pos[p] + step, ends[p])])
                pos[p] = min(pos[p] + step, ends[p])


def check(store: RedisWindowStore, df: pd.DataFrame) -> None:
    for size in (60, 3600):
        got = store.read_windows("state", "gas", size)
        want = expected(df, size)
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
