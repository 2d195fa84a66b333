"""A user's own test with auth_kappa.testing: a few lines, checked against a brute force
sum of the readings they piped in."""

from __future__ import annotations

import random

import pandas as pd
import pytest

from auth_kappa.testing import TopologyTestDriver
from tests.support.epoch import epoch

T0 = 1_772_409_600
SIDS = [f"00000000-0000-4000-8000-0000000000b{i}" for i in range(3)]


def _reading(sid: str, end: int, value: float) -> dict[str, object]:
    return {"service_id": sid, "user_name": "u", "type": "household", "start_ts": end - 5,
            "state": "CA", "consumption": value, "end_ts": end}


def test_a_users_windows_equal_the_brute_force_sum():
    rng = random.Random(7)
    # meter i on partition i % 2; every 5 s for 6 minutes, in event-time order
    sent = [(i % 2, _reading(sid, T0 + 5 * k, round(rng.uniform(0, 2), 3)))
            for k in range(1, 73) for i, sid in enumerate(SIDS)]
    drv = TopologyTestDriver(windows=("1m", "5m"), grace="30s")
    for p in (0, 1):
        mine = [r for q, r in sent if q == p]
        drv.pipe("water", mine[: len(mine) // 2], partition=p)
    for p in (0, 1):   # a second pipe per partition: offsets and windows carry on
        mine = [r for q, r in sent if q == p]
        drv.pipe("water", mine[len(mine) // 2:], partition=p)
    drv.pipe("water", [_reading(SIDS[0], T0 + 20, 9.0),    # window closed long ago
                       "not,a,reading"], partition=0)

    df = pd.DataFrame([r for _, r in sent])
    for size, label in ((60, "1m"), (300, "5m")):
        want = df.groupby(["service_id", df["end_ts"] // size * size])["consumption"] \
            .agg(["sum", "count"])
        got = drv.windows("meter", "water", label)
        have = {(k, w): (round(s, 9), c) for k, w, s, c in
                zip(got["key"], epoch(got["window_start"]), got["sum"], got["count"],
                    strict=True)}
        assert have == {k: (round(s, 9), int(c)) for k, (s, c) in
                        zip(want.index, want.to_numpy(), strict=True)}, label
        state = drv.windows("state", "water", label)
        assert state["sum"].sum() == pytest.approx(df["consumption"].sum(), rel=1e-9)
    assert drv.late()["service_id"].tolist() == [SIDS[0]]
    assert drv.rejected()["raw"].tolist() == [b"not,a,reading"]

