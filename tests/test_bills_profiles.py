"""The ledger's per-meter profile (state, type) and partition, kept by skipping meters whose
values did not change, end as a row-by-row rule says: each meter's last window (by start)
that knows the value."""

from __future__ import annotations

import numpy as np

from auth_kappa.insights.bills import DailyLedger
from auth_kappa.insights.tariff import Tariff
from auth_kappa.topology.keys import uuid_text
from auth_kappa.topology.window_table import Rows

T0 = 1_772_409_600   # 2026-03-02 00:00 UTC


def _batch(rng, meters: int, start: int) -> Rows:
    """Each meter mostly says the same (state, type, partition): some windows do not know
    them (-1), a few say otherwise (a meter moved, a type corrected)."""
    n = int(rng.integers(1, 3 * meters))
    k0 = rng.integers(1, meters + 1, n).astype(np.uint64)
    meter = k0.astype(np.int64)
    odd = rng.random(n) < 0.05
    unknown = rng.random(n) < 0.1
    state = np.where(unknown, -1, np.where(odd, 7, meter % 5))
    mtype = np.where(odd, 1, 0)
    part = np.where(rng.random(n) < 0.1, -1, np.where(odd, 2, meter % 2))
    return Rows(k0, np.zeros(n, np.uint64), start + rng.integers(0, 5, n) * 60,
                rng.random(n), np.ones(n, np.int64), np.zeros(n), np.zeros(n), seen=None,
                part=part.astype(np.int32), state=state.astype(np.int16),
                mtype=mtype.astype(np.int8))


def test_profiles_and_partitions_follow_each_meters_last_window():
    rng = np.random.default_rng(5)
    ledger = DailyLedger("gas", Tariff.load(), keep=False)
    types: dict[str, tuple[int, int]] = {}
    part: dict[str, int] = {}
    for step in range(40):
        rows = _batch(rng, 30, T0 + 300 * step)
        if step == 20:   # a restore writes behind the skipping
            ledger.restore(uuid_text(np.array([1], np.uint64), np.zeros(1, np.uint64))[0],
                           next(iter(ledger.open.values())), 9)
            part[uuid_text(np.array([1], np.uint64), np.zeros(1, np.uint64))[0]] = 9
        ledger.observe(rows)
        order = np.argsort(rows.window_start, kind="stable")
        sids = uuid_text(rows.k0, rows.k1)
        for i in order.tolist():
            if rows.state[i] >= 0:
                types[sids[i]] = (int(rows.state[i]), int(rows.mtype[i]))
            if rows.part[i] >= 0:
                part[sids[i]] = int(rows.part[i])
        assert ledger._types == types, step
        assert ledger.part == part, step
