"""The dashboard benchmark's percentile from the dashboard's own /metrics histogram: it
must land in the bucket that holds the true percentile of the raw latencies (no
services needed)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.bench_dashboard import bucket_pct
from dashboards.metrics import BUCKETS


def cumulative(latencies: np.ndarray) -> dict[float, float]:
    """What /metrics exposes for these latencies: counts at or below each bound."""
    return {b: float((latencies <= b).sum()) for b in (*BUCKETS, math.inf)}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0001, 4.0), min_size=1, max_size=400),
       st.sampled_from([50.0, 90.0, 99.0, 99.9]))
def test_the_percentile_lies_in_the_bucket_of_the_true_one(values, q):
    lat = np.array(values)
    got = bucket_pct(cumulative(lat), q) / 1000
    rank = math.ceil(q / 100 * len(lat))            # the sample at that rank
    true = np.sort(lat)[rank - 1]
    bounds = (0.0, *BUCKETS, math.inf)
    i = next(i for i in range(1, len(bounds)) if true <= bounds[i])
    assert bounds[i - 1] <= got <= bounds[i], (got, true)


def test_no_requests_is_no_figure():
    assert math.isnan(bucket_pct({b: 0.0 for b in (*BUCKETS, math.inf)}, 99))
    assert math.isnan(bucket_pct({}, 99))
