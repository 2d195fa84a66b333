"""The memory store's windows of one (utility, size), as columns behind one code index.

What Redis keeps, with its rules: meter windows are absolute values (a rewrite replaces
the window), each meter trimmed to retention from its own newest window when a new one
arrives (trim_meters.lua); state windows are totals of the deltas every partition sends,
a utility's together, trimmed from the newest start ever held (commit.lua). Columns, not
a dict per window, because the embedded engine writes every window of a fleet through
here: a checkpoint costs numpy work over the batch, not a Python step per window.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from auth_kappa.state.codec import seen_mask
from auth_kappa.topology.keys import mix
from auth_kappa.topology.window_table import UNKNOWN, VALUE_COLUMNS, Rows
from auth_kappa.topology.windows import WindowSpec


class MeterColumns:
    def __init__(self, words: int) -> None:
        self.words = words   # seen bits per window (the finest size), else 0
        self._cols: dict[str, np.ndarray] = {
            "k0": np.zeros(0, np.uint64), "k1": np.zeros(0, np.uint64),
            "window_start": np.zeros(0, np.int64), "sum": np.zeros(0, np.float64),
            "count": np.zeros(0, np.int64), "min": np.zeros(0, np.float64),
            "max": np.zeros(0, np.float64), "seen": np.zeros((0, words), np.uint64),
            "meter": np.zeros(0, np.int64)}   # its row in the meter table below
        self._index = pd.Index(np.zeros(0, np.uint64))
        # the meter table: (k0, k1) by code, and each meter's newest window (retention's N)
        self._meters = pd.Index(np.zeros(0, np.uint64))
        self._mk = (np.zeros(0, np.uint64), np.zeros(0, np.uint64))
        self._newest = np.zeros(0, np.int64)
        # code -> first value bits per second of an open window (only open ones keep them,
        # as Redis's `f:` hash: few, so a dict)
        self.first: dict[int, np.ndarray] = {}
        # partition -> (k0, k1) of the meters it stored a new window for (finest size)
        self.partitions: dict[int, set[tuple[int, int]]] = {}

    def __len__(self) -> int:
        return len(self._cols["k0"])

    def col(self, name: str) -> np.ndarray:
        return self._cols[name]

    def find(self, k0: np.ndarray, k1: np.ndarray, ws: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
        """(codes, position of each window, -1 when not held)."""
        codes = mix(k0, k1, ws.astype(np.uint64))
        pos = self._index.get_indexer(codes)
        held = np.flatnonzero(pos >= 0)
        c = self._cols
        if not ((c["k0"][pos[held]] == k0[held]).all() and
                (c["k1"][pos[held]] == k1[held]).all() and
                (c["window_start"][pos[held]] == ws[held]).all()):
            raise RuntimeError("window code collision; please report this with the input")
        return codes, pos

    def _meter_rows(self, k0: np.ndarray, k1: np.ndarray) -> np.ndarray:
        """Each meter's row in the meter table; meters not in it join."""
        codes = mix(k0, k1, np.zeros(len(k0), np.uint64))
        at = self._meters.get_indexer(codes)
        if (at < 0).any():
            miss = np.flatnonzero(at < 0)
            miss = miss[~pd.Series(codes[miss]).duplicated().to_numpy()]
            self._meters = self._meters.append(pd.Index(codes[miss]))
            self._mk = (np.concatenate([self._mk[0], k0[miss]]),
                        np.concatenate([self._mk[1], k1[miss]]))
            self._newest = np.concatenate([self._newest,
                                           np.full(len(miss), np.iinfo(np.int64).min)])
            at = self._meters.get_indexer(codes)
        if not ((self._mk[0][at] == k0).all() and (self._mk[1][at] == k1).all()):
            raise RuntimeError("meter code collision; please report this with the input")
        return at

    def put(self, rows: Rows, spec: WindowSpec) -> None:
        """Absolute values, the last of a window in `rows` winning; first values kept for
        open windows (seen seconds with a known value), dropped for the others. Then each
        meter with a new window is trimmed to retention."""
        codes = mix(rows.k0, rows.k1, rows.window_start.astype(np.uint64))
        last = ~pd.Series(codes[::-1]).duplicated().to_numpy()[::-1]
        if not last.all():
            rows, codes = rows.select(last), codes[last]
        _, pos = self.find(rows.k0, rows.k1, rows.window_start)
        values = {"k0": rows.k0, "k1": rows.k1, "window_start": rows.window_start,
                  **{k: getattr(rows, k) for k in VALUE_COLUMNS}}
        if self.words:
            values["seen"] = rows.seen if rows.seen is not None else \
                np.zeros((len(rows), self.words), np.uint64)
        meter = self._meter_rows(rows.k0, rows.k1)
        np.maximum.at(self._newest, meter, rows.window_start)
        values["meter"] = meter
        old, new = np.flatnonzero(pos >= 0), np.flatnonzero(pos < 0)
        for name, arr in self._cols.items():
            if name in values:
                arr[pos[old]] = values[name][old]
        if len(new):
            for name, arr in self._cols.items():
                add = values[name][new] if name in values else \
                    np.zeros((len(new), *arr.shape[1:]), arr.dtype)
                self._cols[name] = np.concatenate([arr, add])
            self._index = self._index.append(pd.Index(codes[new]))
        self._keep_first(rows, codes)
        self._index_partitions(rows, meter)
        self._trim(rows, meter, spec)

    def _index_partitions(self, rows: Rows, meter: np.ndarray) -> None:
        if not self.words or rows.part is None:
            return
        pick = rows.part >= 0 if rows.new is None else rows.new & (rows.part >= 0)
        if not pick.any():
            return
        m = len(self._newest)
        pairs = np.unique(rows.part[pick].astype(np.int64) * m + meter[pick])
        for p, at in zip((pairs // m).tolist(), (pairs % m).tolist(), strict=True):
            self.partitions.setdefault(p, set()).add(
                (int(self._mk[0][at]), int(self._mk[1][at])))

    def _keep_first(self, rows: Rows, codes: np.ndarray) -> None:
        known = np.zeros(len(rows), bool)
        if self.words and rows.first is not None and rows.seen is not None:
            known = (rows.first != UNKNOWN).any(axis=1) & (rows.count > 0)
        if self.first and not known.all():
            for code in set(self.first).intersection(codes[~known].tolist()):
                del self.first[code]
        if known.any():
            idx = np.flatnonzero(known)
            kept = np.where(seen_mask(rows.seen[idx]), rows.first[idx], UNKNOWN)
            self.first.update(zip(codes[idx].tolist(), kept, strict=True))

    def drop_firsts(self, k0: np.ndarray, k1: np.ndarray, cut: float) -> int:
        """First values of these meters' windows that start before `cut`."""
        if not self.first:
            return 0
        codes = np.fromiter(self.first, np.uint64, len(self.first))
        pos = self._index.get_indexer(codes)
        c, zero = self._cols, np.zeros(len(codes), np.uint64)
        mine = np.isin(mix(c["k0"][pos], c["k1"][pos], zero),
                       mix(k0, k1, np.zeros(len(k0), np.uint64)))
        gone = codes[(pos >= 0) & mine & (c["window_start"][pos] < cut)]
        for code in gone.tolist():
            del self.first[code]
        return len(gone)

    def _trim(self, rows: Rows, meter: np.ndarray, spec: WindowSpec) -> None:
        """Each meter with a new window in `rows` keeps only windows after its cut, N its
        newest window (WindowSpec.retention_cut)."""
        new = np.ones(len(rows), bool) if rows.new is None else rows.new
        if not new.any() or not len(self):
            return
        touched = np.zeros(len(self._newest), bool)
        touched[meter[new]] = True
        held = self._cols["meter"]
        cut = spec.retention_cut(self._newest, "meter")
        drop = np.flatnonzero(touched[held] & (self._cols["window_start"] <= cut[held]))
        if not len(drop):
            return
        keep = np.ones(len(self), bool)
        keep[drop] = False
        gone = self._index[drop]
        for name, arr in self._cols.items():
            self._cols[name] = arr[keep]
        self._index = self._index[keep]
        for code in set(self.first).intersection(np.asarray(gone).tolist()):
            del self.first[code]


class StateColumns:
    def __init__(self) -> None:
        self._cols: dict[str, np.ndarray] = {
            "k0": np.zeros(0, np.uint64), "window_start": np.zeros(0, np.int64),
            "sum": np.zeros(0, np.float64), "count": np.zeros(0, np.int64),
            "min": np.zeros(0, np.float64), "max": np.zeros(0, np.float64)}
        self._index = pd.Index(np.zeros(0, np.uint64))
        self.newest: int | None = None   # retention's N: the newest start ever held

    def __len__(self) -> int:
        return len(self._cols["k0"])

    def col(self, name: str) -> np.ndarray:
        return self._cols[name]

    def add(self, rows: Rows, spec: WindowSpec) -> None:
        """Deltas (k0 the state, k1 the partition that sent them) merged into totals;
        windows at or before the cut are dropped, arriving or held."""
        top = int(rows.window_start.max())
        self.newest = top if self.newest is None else max(self.newest, top)
        cut = spec.retention_cut(self.newest, "state")
        keep = rows.window_start > cut
        g = pd.DataFrame({"k0": rows.k0[keep], "window_start": rows.window_start[keep],
                          "sum": rows.sum[keep], "count": rows.count[keep],
                          "min": rows.min[keep], "max": rows.max[keep]}).groupby(
            ["k0", "window_start"], sort=False).agg(
            {"sum": "sum", "count": "sum", "min": "min", "max": "max"}).reset_index()
        k0, ws = g["k0"].to_numpy(np.uint64), g["window_start"].to_numpy(np.int64)
        codes = mix(k0, np.zeros(len(k0), np.uint64), ws.astype(np.uint64))
        pos = self._index.get_indexer(codes)
        c = self._cols
        held = np.flatnonzero(pos >= 0)
        at = pos[held]
        if not ((c["k0"][at] == k0[held]).all() and (c["window_start"][at] == ws[held]).all()):
            raise RuntimeError("window code collision; please report this with the input")
        c["sum"][at] += g["sum"].to_numpy()[held]
        c["count"][at] += g["count"].to_numpy()[held]
        c["min"][at] = np.minimum(c["min"][at], g["min"].to_numpy()[held])
        c["max"][at] = np.maximum(c["max"][at], g["max"].to_numpy()[held])
        new = np.flatnonzero(pos < 0)
        if len(new):
            values = {"k0": k0, "window_start": ws, **{k: g[k].to_numpy() for k in
                                                        ("sum", "count", "min", "max")}}
            for name, arr in c.items():
                c[name] = np.concatenate([arr, values[name][new].astype(arr.dtype)])
            self._index = self._index.append(pd.Index(codes[new]))
        if len(self) and c["window_start"].min() <= cut:
            keep = c["window_start"] > cut
            for name, arr in c.items():
                c[name] = arr[keep]
            self._index = self._index[keep]
