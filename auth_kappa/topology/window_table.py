"""Open windows of one (utility, level, size) as columns, found by a 64-bit code index.

This is the operator state every runtime shares. At the finest size and meter level it
also holds each window's "seen" bits, one per second of the window, and the first value
read for each seen second (its float64 bits), which is how resends are recognised and an
exact one told from a conflicting one: the dedup state lives and expires with the window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from auth_kappa.topology.keys import mix

# loader(k0, k1, window_start) -> dict of initial columns for windows not in memory, or None
Loader = Callable[[np.ndarray, np.ndarray, np.ndarray], dict[str, np.ndarray] | None]
VALUE_COLUMNS = ("sum", "count", "min", "max")
# Rows fields some parts of a concat may lack (final windows' extras): dropped then
NOT_ALWAYS = frozenset({"edges", "state", "mtype", "cont"})
# "first value not known" (windows stored before values were kept): a NaN's bits, which no
# accepted reading has; a resend of such a second counts as an exact duplicate
UNKNOWN = np.uint64(0x7FF8_0000_DEAD_0001)


def fingerprint(values: np.ndarray) -> np.ndarray:
    """Exact identity of a value: its float64 bits, with -0.0 taken as 0.0 (equal values)."""
    return (np.asarray(values, np.float64) + 0.0).view(np.uint64)


@dataclass
class Rows:
    """A set of window rows taken out of a table (final windows, or dirty ones to persist)."""

    k0: np.ndarray
    k1: np.ndarray
    window_start: np.ndarray
    sum: np.ndarray
    count: np.ndarray
    min: np.ndarray
    max: np.ndarray
    seen: np.ndarray | None
    new: np.ndarray | None = None   # True: not in the store yet (first write of the window)
    part: np.ndarray | None = None  # source partition of the readings in it (-1: none)
    # [n, 64 * words] first value's bits per second (finest); [n, 0] once final: none kept
    first: np.ndarray | None = None
    state: np.ndarray | None = None  # meter level: its state's code (-1: not read here)
    mtype: np.ndarray | None = None  # meter level: its meter type's code (-1: not read here)
    # final finest windows: the values of their first and last reading ([n, 2]; NaN: not
    # known), kept when `first` is cleared (insights estimate a gap's readings from them)
    edges: np.ndarray | None = None
    # final windows: True where the store already holds the values (unchanged since the
    # checkpoint that wrote them): nothing to write but the dropped first values
    held: np.ndarray | None = None
    # True where the window before it (start - size, same key) was held when this one
    # opened, so the store holds it too: retention trims it as a run (state/redis_store.py)
    cont: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.window_start)

    def slice(self, lo: int, hi: int) -> Rows:
        return self.select(slice(lo, hi))

    def select(self, which: slice | np.ndarray) -> Rows:
        """The rows picked by a slice, a boolean mask or an index array."""
        return Rows(**{f.name: None if getattr(self, f.name) is None else
                       getattr(self, f.name)[which] for f in fields(self)})

    @classmethod
    def concat(cls, parts: list[Rows]) -> Rows:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        out = Rows(**{f.name: None if any(getattr(p, f.name) is None for p in
                                          (parts if f.name in NOT_ALWAYS else parts[:1]))
                      else np.concatenate([getattr(p, f.name) for p in parts])
                      for f in fields(cls) if f.name not in ("first", "held")})
        out.first = _concat_firsts([p.first for p in parts])
        if any(p.held is not None for p in parts):   # a part without: all to write
            out.held = np.concatenate([np.zeros(len(p), bool) if p.held is None else p.held
                                       for p in parts])
        return out

    @classmethod
    def empty(cls) -> Rows:
        u, f = np.zeros(0, np.uint64), np.zeros(0, np.float64)
        return cls(u, u, np.zeros(0, np.int64), f, np.zeros(0, np.int64), f, f, None)


def _concat_firsts(parts: list[np.ndarray | None]) -> np.ndarray | None:
    """Final windows keep no first values (a [n, 0] block): beside open ones they read
    as UNKNOWN, which is what a store deletes."""
    if parts[0] is None:
        return None
    width = max(p.shape[1] for p in parts)
    if all(p.shape[1] == width for p in parts):
        return np.concatenate(parts)
    out = np.full((sum(len(p) for p in parts), width), UNKNOWN, np.uint64)
    at = 0
    for p in parts:
        if p.shape[1]:
            out[at:at + len(p)] = p
        at += len(p)
    return out


class WindowTable:
    def __init__(self, size: int, dedup: bool) -> None:
        self.size = size
        self.words = -(-size // 64) if dedup else 0
        self._n = 0
        self._cols: dict[str, np.ndarray] = {
            "k0": np.zeros(0, np.uint64), "k1": np.zeros(0, np.uint64),
            "window_start": np.zeros(0, np.int64), "sum": np.zeros(0, np.float64),
            "count": np.zeros(0, np.int64), "min": np.zeros(0, np.float64),
            "max": np.zeros(0, np.float64), "dirty": np.zeros(0, bool),
            "stored": np.zeros(0, bool), "part": np.zeros(0, np.int32),
            "state": np.zeros(0, np.int16), "mtype": np.zeros(0, np.int8),
            "cont": np.zeros(0, bool),
            "seen": np.zeros((0, self.words), np.uint64),
            "first": np.zeros((0, 64 * self.words), np.uint64),
        }
        self._index = pd.Index(np.zeros(0, np.uint64))
        # a window fed by two partitions: per-partition checkpoints are then unsafe
        self.mixed = False

    def __len__(self) -> int:
        return self._n

    def col(self, name: str) -> np.ndarray:
        return self._cols[name][: self._n]

    def locate(self, k0: np.ndarray, k1: np.ndarray, window_start: np.ndarray,
               loader: Loader | None = None) -> np.ndarray:
        """Row of each (key, window); windows not held yet are loaded or started empty."""
        codes = mix(k0, k1, window_start.astype(np.uint64))
        rows = self._index.get_indexer(codes)
        missing = rows < 0
        if missing.any():
            pick = np.flatnonzero(missing)
            pick = pick[~pd.Series(codes[pick]).duplicated().to_numpy()]
            before = mix(k0[pick], k1[pick], (window_start[pick] - self.size).astype(np.uint64))
            cont = (self._index.get_indexer(before) >= 0) | np.isin(before, codes[pick])
            self._append(k0[pick], k1[pick], window_start[pick],
                         loader(k0[pick], k1[pick], window_start[pick]) if loader else None,
                         cont)
            rows = self._index.get_indexer(codes)
        if not ((self._cols["k0"][rows] == k0).all() and (self._cols["k1"][rows] == k1).all()
                and (self._cols["window_start"][rows] == window_start).all()):
            raise RuntimeError("window code collision; please report this with the input")
        return rows

    def locate_grouped(self, labels: np.ndarray, k0: np.ndarray, k1: np.ndarray,
                       window_start: np.ndarray, loader: Loader | None = None) -> np.ndarray:
        """locate() for readings whose equal labels (small ints, see group_labels) mean the
        same window: one hash lookup a window, not a reading (a state's or an hour's
        readings are many to a window)."""
        if not len(labels):
            return np.zeros(0, np.int64)
        pick = np.full(int(labels.max()) + 1, -1, np.int64)
        pick[labels] = np.arange(len(labels))          # any one reading of each label
        present = np.flatnonzero(pick >= 0)
        idx = pick[present]
        row_of = np.zeros(len(pick), np.int64)
        row_of[present] = self.locate(k0[idx], k1[idx], window_start[idx], loader)
        return row_of[labels]

    def _append(self, k0: np.ndarray, k1: np.ndarray, ws: np.ndarray,
                init: dict[str, np.ndarray] | None, cont: np.ndarray | bool = False) -> None:
        m, n = len(ws), self._n
        if n + m > len(self._cols["k0"]):
            cap = max(1024, 2 * (n + m))
            for name, arr in self._cols.items():
                grown = np.zeros((cap, *arr.shape[1:]), arr.dtype)
                grown[:n] = arr[:n]
                self._cols[name] = grown
        c = self._cols
        c["k0"][n:n + m], c["k1"][n:n + m], c["window_start"][n:n + m] = k0, k1, ws
        c["sum"][n:n + m], c["count"][n:n + m] = 0.0, 0
        c["min"][n:n + m], c["max"][n:n + m] = np.inf, -np.inf
        c["seen"][n:n + m] = 0
        c["first"][n:n + m] = UNKNOWN
        c["dirty"][n:n + m] = False
        c["stored"][n:n + m] = False
        c["part"][n:n + m] = -1
        c["state"][n:n + m] = -1
        c["mtype"][n:n + m] = -1
        c["cont"][n:n + m] = cont
        if init:
            for name, values in init.items():
                c[name][n:n + m] = values
        self._n = n + m
        self._reindex()

    def _reindex(self) -> None:
        self._index = pd.Index(mix(self.col("k0"), self.col("k1"),
                                   self.col("window_start").astype(np.uint64)))

    def dedup(self, rows: np.ndarray, end_ts: np.ndarray, values: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
        """(fresh, conflict) per reading, in batch order. Fresh: its second is new to its
        window; it is marked seen and its value kept. A resend is a conflict when its value
        differs from the first one's (exact bits), else an exact duplicate."""
        bit = end_ts - self._cols["window_start"][rows]
        word, mask = bit // 64, np.left_shift(np.uint64(1), (bit % 64).astype(np.uint64))
        fresh = ~pd.Series(rows * (self.words * 64) + bit).duplicated().to_numpy()
        fresh &= (self._cols["seen"][rows, word] & mask) == 0
        np.bitwise_or.at(self._cols["seen"], (rows[fresh], word[fresh]), mask[fresh])
        fp, first = fingerprint(values), self._cols["first"]
        first[rows[fresh], bit[fresh]] = fp[fresh]
        if fresh.all():
            return fresh, np.zeros(len(fresh), bool)
        held = first[rows, bit]
        return fresh, ~fresh & (held != fp) & (held != UNKNOWN)

    def add(self, rows: np.ndarray, values: np.ndarray, part: np.ndarray | None = None,
            state: np.ndarray | None = None, mtype: np.ndarray | None = None) -> None:
        c = self._cols
        if state is not None:
            c["state"][rows], c["mtype"][rows] = state, mtype
        if part is not None:
            before = c["part"][rows]
            c["part"][rows] = part
            if ((before >= 0) & (before != part)).any() or (c["part"][rows] != part).any():
                self.mixed = True
        np.add.at(c["sum"], rows, values)
        np.add.at(c["count"], rows, 1)
        np.minimum.at(c["min"], rows, values)
        np.maximum.at(c["max"], rows, values)
        c["dirty"][rows] = True

    def take(self, mask: np.ndarray, remove: bool, firsts: bool = True) -> Rows:
        """The rows of `mask`, as copies (removed from the table or not); without
        `firsts`, first values come as an [n, 0] block (final windows keep none)."""
        idx = np.flatnonzero(mask)
        c = self._cols
        out = Rows(*(c[name][idx] for name in   # an index array: these are copies
                     ("k0", "k1", "window_start", *VALUE_COLUMNS)),
                   seen=c["seen"][idx] if self.words else None,
                   new=~c["stored"][idx], part=c["part"][idx],
                   state=c["state"][idx], mtype=c["mtype"][idx], cont=c["cont"][idx],
                   first=None if not self.words else c["first"][idx] if firsts else
                   np.zeros((len(idx), 0), np.uint64))
        if remove and len(idx):
            self._remove(idx)
        return out

    def _remove(self, idx: np.ndarray) -> None:
        """Rows kept past the new end move into the holes below it: a minute's final
        windows (a third of a meter table) cost what they are, not what the table is."""
        end = self._n - len(idx)
        holes = idx[idx < end]
        if len(holes):
            gone = np.zeros(self._n - end, bool)
            gone[idx[idx >= end] - end] = True
            movers = end + np.flatnonzero(~gone)
            for arr in self._cols.values():
                arr[holes] = arr[movers]
        self._n = end
        self._reindex()

    def pop_final(self, before: float | np.ndarray) -> Rows:
        """Windows that started before the cut (one for all, or one per row) are final:
        hand them out and forget them."""
        final = self.col("window_start") < before
        held = (self.col("stored") & ~self.col("dirty"))[final]
        # later readings for them are late: dedup is over, and no first value is kept
        # but each window's edges (gathered from the table: a copy of every first value
        # cost a 25k meters' minute ~10 MB)
        edges = edge_values(self._cols["seen"], self._cols["first"], np.flatnonzero(final)) \
            if self.words else None
        out = self.take(final, remove=True, firsts=False)
        out.held, out.edges = held, edges
        return out

    def pop_dirty(self) -> Rows:
        """Rows changed since the last call; they count as stored from now on (a failed
        checkpoint crashes the worker, which then reloads from the store)."""
        dirty = self.col("dirty").copy()
        out = self.take(dirty, remove=False)
        self._cols["dirty"][: self._n] = False
        self._cols["stored"][: self._n] |= dirty
        return out

    def adopt(self, k0: np.ndarray, k1: np.ndarray, ws: np.ndarray,
              init: dict[str, np.ndarray], part: int) -> None:
        """Take in stored windows (reopened after a restart) that are not held yet; they
        belong to `part` and count as stored, not dirty."""
        fresh = self._index.get_indexer(mix(k0, k1, ws.astype(np.uint64))) < 0
        if fresh.any():
            self._append(k0[fresh], k1[fresh], ws[fresh],
                         {**{k: v[fresh] for k, v in init.items()},
                          "part": np.full(int(fresh.sum()), part, np.int32)})

    def snapshot(self) -> Rows:
        return self.take(np.ones(self._n, bool), remove=False)


def group_labels(columns: list[np.ndarray], limit: int) -> np.ndarray | None:
    """One int in [0, limit) per distinct tuple of the integer columns (mixed radix over
    their ranges: equal labels, equal tuples), or None when the ranges are too wide."""
    label, span = np.zeros(len(columns[0]), np.int64), 1
    for col in columns:
        col = col.astype(np.int64, copy=False)
        lo = int(col.min()) if len(col) else 0
        width = (int(col.max()) - lo + 1) if len(col) else 1
        span *= width
        if span > limit:
            return None
        label = label * width + (col - lo)
    return label


def edge_seconds(seen: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each window's earliest and latest seen second, and whether it saw any."""
    bits = np.unpackbits(seen.view(np.uint8), axis=1, bitorder="little").astype(bool)
    lo = np.argmax(bits, axis=1)
    hi = bits.shape[1] - 1 - np.argmax(bits[:, ::-1], axis=1)
    return lo, hi, bits.any(axis=1)


def edge_values(seen: np.ndarray, first: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """[n, 2]: the first value of each window's (these rows') earliest and latest seen
    second."""
    lo, hi, has = edge_seconds(seen[rows])
    out = np.stack([first[rows, lo], first[rows, hi]], axis=1).view(np.float64).copy()
    out[~has] = np.nan
    return out
