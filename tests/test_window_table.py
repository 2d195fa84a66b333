"""The window table against a dict of windows: rows removed from anywhere (final windows
leave holes that rows past the new end fill) keep every other window whole and findable."""

from __future__ import annotations

import numpy as np

from auth_kappa.topology.window_table import UNKNOWN, Rows, WindowTable


def test_removals_in_any_order_keep_every_window_exact():
    rng = np.random.default_rng(7)
    table, truth = WindowTable(60, dedup=True), {}
    for step in range(60):
        n = int(rng.integers(1, 400))
        k0 = rng.integers(0, 50, n).astype(np.uint64)
        k1 = np.zeros(n, np.uint64)
        ws = (step // 3 + rng.integers(0, 4, n)) * 60
        values = rng.random(n)
        rows = table.locate(k0, k1, ws)
        table.add(rows, values)
        for a, w, v in zip(k0.tolist(), ws.tolist(), values.tolist(), strict=True):
            s, c = truth.get((a, w), (0.0, 0))
            truth[(a, w)] = (s + v, c + 1)
        cut = (step // 3) * 60 + int(rng.integers(-1, 2)) * 60
        out = table.pop_final(cut)
        for a, w, s, c in zip(out.k0.tolist(), out.window_start.tolist(), out.sum, out.count,
                              strict=True):
            assert w < cut
            ts, tc = truth.pop((a, w))
            assert (c, round(s, 9)) == (tc, round(ts, 9))
        assert out.first.shape == (len(out), 0)   # final: no first values kept
        left = table.snapshot()
        assert len(left) == len(truth)
        for a, w, s, c in zip(left.k0.tolist(), left.window_start.tolist(), left.sum,
                              left.count, strict=True):
            assert w >= cut
            assert (c, round(s, 9)) == (truth[(a, w)][1], round(truth[(a, w)][0], 9))
        held = table.locate(left.k0, left.k1, left.window_start)   # all found, none added
        assert len(table) == len(left) and sorted(held.tolist()) == list(range(len(left)))


def _rows(first: np.ndarray) -> Rows:
    n = len(first)
    z = np.zeros(n, np.uint64)
    return Rows(z, z, np.zeros(n, np.int64), np.zeros(n), np.zeros(n, np.int64), np.zeros(n),
                np.zeros(n), seen=None, first=first)


def test_final_rows_beside_open_ones_read_as_unknown_first_values():
    wide = _rows(np.arange(2 * 64, dtype=np.uint64).reshape(2, 64))
    final = _rows(np.zeros((3, 0), np.uint64))
    both = Rows.concat([final, wide, final])
    assert both.first.shape == (8, 64)
    assert (both.first[:3] == UNKNOWN).all() and (both.first[5:] == UNKNOWN).all()
    assert (both.first[3:5] == wide.first).all()
    assert Rows.concat([final, final]).first.shape == (6, 0)
