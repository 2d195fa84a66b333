"""The embedded engine is the live runtime over the memory store (issue 13): it has no
window or insight logic of its own, so its windows are a worker's checkpoints. They equal
a brute force over the readings whatever the checkpoint size, and final_only leaves out
exactly the windows still open by the event-time rule."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest

from auth_kappa import Engine
from auth_kappa.runtime import embedded
from auth_kappa.runtime.live import LiveRuntime
from auth_kappa.state.memory import MemoryWindowStore

T0 = 1_772_409_600
GRACE = 30


def _readings(meters: int = 40, minutes: int = 150, seed: int = 5) -> pd.DataFrame:
    """5 s heartbeat in event-time order; meters in a few states, some silent a while."""
    rng = np.random.default_rng(seed)
    ends = T0 + 5 + 5 * np.arange(minutes * 12)
    frames = []
    for i in range(meters):
        keep = np.ones(len(ends), bool)
        if i % 4 == 0:
            lo = rng.integers(0, len(ends))
            keep[lo:lo + rng.integers(60, 600)] = False
        frames.append(pd.DataFrame({
            "service_id": str(uuid.UUID(int=777_000 + i, version=4)),
            "state": ("CA", "NY", "TX", "WA")[i % 4], "end_ts": ends[keep],
            "consumption": rng.uniform(0, 0.3, len(ends))[keep].round(6)}))
    return pd.concat(frames).sort_values("end_ts", kind="stable").reset_index(drop=True)


def _lines(df: pd.DataFrame) -> list[str]:
    return [f"{s},u,household,{e - 5},{st},{c},{e}" for s, st, e, c in
            zip(df["service_id"], df["state"], df["end_ts"], df["consumption"], strict=True)]


def _brute(df: pd.DataFrame, level: str, size: int) -> dict[tuple[str, int], tuple]:
    key = "service_id" if level == "meter" else "state"
    g = df.assign(ws=df["end_ts"] // size * size).groupby([key, "ws"])["consumption"]
    out = g.agg(["sum", "count", "min", "max"])
    return {(k, int(w)): (round(s, 9), int(c), lo, hi)
            for (k, w), (s, c, lo, hi) in out.iterrows()}


def _engine(df: pd.DataFrame, chunks: int = 3) -> Engine:
    eng = Engine.embedded(["1m", "1h"], grace=f"{GRACE}s", retention="1d",
                          meter_retention="1d")   # retention: tests/test_retention.py
    for part in np.array_split(np.arange(len(df)), chunks):
        eng.ingest(_lines(df.iloc[part]), utility="electricity")
    return eng


def _got(eng: Engine, level: str, window: str, final_only: bool = False
         ) -> dict[tuple[str, int], tuple]:
    w = eng.windows(level, "electricity", window, final_only=final_only)
    starts = w["window_start"].to_numpy("datetime64[s]").astype(np.int64)
    return {(k, int(t)): (round(s, 9), int(c), lo, hi) for k, t, s, c, lo, hi in
            zip(w["key"], starts, w["sum"], w["count"], w["min"], w["max"], strict=True)}


def test_the_embedded_engine_is_the_live_runtime_over_the_memory_store():
    rt = Engine.embedded("1m")._rt
    assert type(rt.live) is LiveRuntime and type(rt.store) is MemoryWindowStore
    assert rt.live.store is rt.store and rt.live.insights.keep_all


@pytest.mark.parametrize("every", [997, embedded.CHECKPOINT_READINGS])
def test_windows_equal_the_brute_force_whatever_the_checkpoint_size(monkeypatch, every):
    monkeypatch.setattr(embedded, "CHECKPOINT_READINGS", every)
    df = _readings()
    eng = _engine(df)
    eng.flush()
    for level in ("meter", "state"):
        for window, size in (("1m", 60), ("1h", 3600)):
            assert _got(eng, level, window) == _brute(df, level, size), (level, window)
    assert eng.stats.accepted == len(df)


def test_final_only_leaves_out_exactly_the_open_windows():
    df = _readings(minutes=95)
    eng = _engine(df, chunks=4)
    high = int(df["end_ts"].max())
    for level in ("meter", "state"):
        for window, size in (("1m", 60), ("1h", 3600)):
            every = _brute(df, level, size)
            final = {k: v for k, v in every.items() if k[1] + size + GRACE <= high}
            assert 0 < len(final) < len(every)
            assert _got(eng, level, window, final_only=True) == final, (level, window)
            assert _got(eng, level, window) == every, (level, window)
