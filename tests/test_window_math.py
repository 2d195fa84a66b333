"""The topology's window math against a brute-force reference, on random inputs (hypothesis)."""

from __future__ import annotations

import math
import uuid
from collections import defaultdict

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from auth_kappa import Engine
from auth_kappa.topology.schema import STATES

T0 = 1_772_409_600  # 2026-03-02T00:00:00Z
METERS = [(str(uuid.UUID(int=i * 7919 + 1, version=4)), STATES[i % len(STATES)]) for i in range(6)]

reading = st.tuples(
    st.integers(0, len(METERS) - 1),             # meter
    st.sampled_from(["electricity", "gas"]),     # utility
    st.integers(0, 120).map(lambda k: 5 * k),    # end_ts offset on the 5 s heartbeat grid
    st.floats(0, 5, allow_nan=False).map(lambda x: round(x, 6)),
)


def _csv(m: int, end: int, value: float) -> str:
    sid, state = METERS[m]
    return f"{sid},user{m},household,{end - 5},{state},{value},{end}"


def brute_force(readings, size, grace):
    """Per reading, in order: late if its window is final by the clock of everything before
    it (batching plays no part); else dedup; else add."""
    high: dict[str, float] = defaultdict(lambda: -math.inf)
    seen, late = set(), 0
    sums: dict[tuple, list] = {}
    for m, u, off, v in readings:
        end = T0 + off
        ws = (end // size) * size
        if ws + size + grace <= high[u]:
            late += 1
        elif (m, u, end) not in seen:
            seen.add((m, u, end))
            for level, key in (("meter", METERS[m][0]), ("state", METERS[m][1])):
                agg = sums.setdefault((level, u, key, ws), [0.0, 0, math.inf, -math.inf])
                agg[0] += v
                agg[1] += 1
                agg[2] = min(agg[2], v)
                agg[3] = max(agg[3], v)
        high[u] = max(high[u], end)
    return sums, late


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(readings=st.lists(reading, min_size=1, max_size=150),
       size=st.sampled_from([60, 30, 300]), grace=st.sampled_from([0, 30, 90]),
       batch=st.integers(1, 40))
# the lateness boundary: end + grace == watermark is final (late); one second less is not
@example(readings=[(0, "gas", 90, 1.0), (1, "gas", 55, 2.0)], size=60, grace=30, batch=1)
@example(readings=[(0, "gas", 85, 1.0), (1, "gas", 55, 2.0)], size=60, grace=30, batch=1)
@example(readings=[(0, "gas", 90, 1.0), (0, "gas", 90, 1.0), (1, "gas", 0, 2.0)],
         size=60, grace=0, batch=1)
# within one batch: the reading behind a newer one in the same batch is late too
@example(readings=[(0, "electricity", 60, 0.0), (0, "electricity", 0, 0.0)], size=60,
         grace=0, batch=2)
def test_windows_equal_brute_force(readings, size, grace, batch):
    eng = Engine.embedded(window=f"{size}s", grace=f"{grace}s")
    for i in range(0, len(readings), batch):
        by_u = defaultdict(list)
        for m, u, off, v in readings[i:i + batch]:
            by_u[u].append(_csv(m, T0 + off, v))
        for u, lines in by_u.items():  # one utility per call, as one topic batch
            eng.ingest(lines, utility=u)
    eng.flush()
    expected, late = brute_force(readings, size, grace)
    got = {}
    for level in ("meter", "state"):
        for u in ("electricity", "gas"):
            for r in eng.windows(level=level, utility=u).itertuples():
                assert r.window_end - r.window_start == pd.Timedelta(seconds=size)
                start = int(r.window_start.timestamp())
                got[(level, u, r.key, start)] = [r.sum, r.count, r.min, r.max]
    assert got.keys() == expected.keys()
    for k, (s, c, lo, hi) in expected.items():
        assert got[k][0] == pytest.approx(s, abs=1e-9) and got[k][1:] == [c, lo, hi]
    assert eng.stats.late == late
    assert eng.stats.accepted == sum(v[1] for k, v in expected.items() if k[0] == "meter")


def test_window_start_is_floor_of_end_ts_utc():
    from auth_kappa.topology.windows import WindowSpec

    spec = WindowSpec.parse("1m")
    assert spec.start([T0, T0 + 59, T0 + 60, -1]).tolist() == [T0, T0, T0 + 60, -60]
    assert WindowSpec.parse("1h").label == "1h" and spec.retention == 48 * 3600
