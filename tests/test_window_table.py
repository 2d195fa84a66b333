"""The window table against a dict of windows: rows removed from anywhere (final windows
leave holes that rows past the new end fill) keep every other window whole and findable."""

from __future__ import annotations

import numpy as np

from auth_kappa.topology.window_table import UNKNOWN, Rows, WindowTable, group_labels


def test_removals_in_any_order_keep_every_window_exact():
    """Also each window's `cont`: whether the window before it was held when it opened
    (before this batch, or opened in it), what retention trims as a run."""
    rng = np.random.default_rng(7)
    table, truth, runs, checked = WindowTable(60, dedup=True), {}, {}, set()
    for step in range(60):
        n = int(rng.integers(1, 400))
        k0 = rng.integers(0, 50, n).astype(np.uint64)
        k1 = np.zeros(n, np.uint64)
        ws = (step // 3 + rng.integers(0, 4, n)) * 60
        values = rng.random(n)
        opened = {(a, w) for a, w in zip(k0.tolist(), ws.tolist(), strict=True)} - set(truth)
        for a, w in opened:
            runs[(a, w)] = (a, w - 60) in truth or (a, w - 60) in opened
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
        assert out.cont.tolist() == [runs.pop((a, w)) for a, w in
                                     zip(out.k0.tolist(), out.window_start.tolist(), strict=True)]
        checked |= set(out.cont.tolist())
        assert out.first.shape == (len(out), 0)   # final: no first values kept
        left = table.snapshot()
        assert len(left) == len(truth)
        for a, w, s, c in zip(left.k0.tolist(), left.window_start.tolist(), left.sum,
                              left.count, strict=True):
            assert w >= cut
            assert (c, round(s, 9)) == (truth[(a, w)][1], round(truth[(a, w)][0], 9))
        held = table.locate(left.k0, left.k1, left.window_start)   # all found, none added
        assert len(table) == len(left) and sorted(held.tolist()) == list(range(len(left)))
    assert checked == {False, True}


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


def test_grouped_lookups_find_the_rows_a_lookup_per_reading_finds():
    """Readings labelled by (state, partition, window) or by (finest row, window) reach
    the same rows as one lookup each, windows appearing and going between batches."""
    rng = np.random.default_rng(11)
    plain, grouped = WindowTable(3600, dedup=False), WindowTable(3600, dedup=False)
    for step in range(40):
        n = int(rng.integers(1, 500))
        k0 = rng.integers(0, 60, n).astype(np.uint64)
        k1 = rng.integers(0, 3, n).astype(np.uint64)
        ws = (step // 4 + rng.integers(0, 3, n)) * 3600
        labels = group_labels([k0, k1, ws // 3600], limit=4 * n + 4096)
        assert labels is not None
        want = plain.locate(k0, k1, ws)
        got = grouped.locate_grouped(labels, k0, k1, ws)
        snap = grouped.snapshot()
        assert (snap.k0[got] == k0).all() and (snap.k1[got] == k1).all() \
            and (snap.window_start[got] == ws).all()
        assert len(plain) == len(grouped) == len(set(zip(k0, k1, ws, strict=True)) |
                                                 set(zip(snap.k0, snap.k1, snap.window_start,
                                                         strict=True)))
        assert len(np.unique(want)) == len(np.unique(got))
        cut = (step // 4) * 3600
        assert len(plain.pop_final(cut)) == len(grouped.pop_final(cut))
    wide = [np.array([0, 2**40], np.int64), np.array([0, 1], np.int64)]
    assert group_labels(wide, limit=10_000) is None   # ranges too wide: one lookup each
    labels = group_labels([np.array([5, 7, 5]), np.array([1, 1, 2])], limit=100)
    assert labels is not None and labels[0] != labels[1] != labels[2] != labels[0]
