"""Window state in memory: the WindowStore contract (state/protocol.py) without Redis.

Two uses. The embedded engine keeps its final windows here (put_final, final, retain).
A runtime checkpoints here as it does to Redis (claim, checkpoint, loader, ...), with the
same meaning: tests/test_store_parity.py runs one suite on both stores. The store object
outlives the runtimes that write to it, as Redis outlives its workers: a "restart" is a
new runtime over the same store.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from auth_kappa.state.codec import seen_mask
from auth_kappa.state.layout import watermarks_and_newest
from auth_kappa.state.redis_store import RedisWindowStore
from auth_kappa.topology.keys import uuid_keys, uuid_text
from auth_kappa.topology.processor import Slot, rows_frame
from auth_kappa.topology.schema import STATES
from auth_kappa.topology.window_table import UNKNOWN, Loader, Rows
from auth_kappa.topology.windows import WindowSpec

# a stored window: sum, count, min, max, seen bits (finest size) and first values (open)
Stored = tuple[float, int, float, float, np.ndarray | None, np.ndarray | None]
Meter = tuple[int, int]   # (k0, k1) of a service_id


@dataclass
class MemoryWindowStore:
    windows: tuple[WindowSpec, ...] = ()   # the sizes a runtime checkpoints (retention)
    cluster: bool = False
    acknowledged: dict[str, int] = field(default_factory=dict)
    _parts: dict[Slot, list[pd.DataFrame]] = field(default_factory=dict)
    # (utility, size) -> meter -> window_start -> values: absolute, like Redis's HSETs
    _meters: dict[tuple[str, int], dict[Meter, dict[int, Stored]]] = \
        field(default_factory=dict)
    # (utility, size) -> (state code, window_start) -> [sum, count, min, max]: totals
    _states: dict[tuple[str, int], dict[tuple[int, int], list]] = field(default_factory=dict)
    _newest: dict[tuple[str, int], int] = field(default_factory=dict)   # state retention N
    _index: dict[tuple[str, int], set[Meter]] = field(default_factory=dict)
    _progress: dict[str, dict[str, float]] = field(default_factory=dict)
    _counts: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ---- the WindowStore contract (state/protocol.py)
    def claim(self, partitions: list[str]) -> dict[str, int]:
        gens = self._progress.setdefault("generations", {})
        with self._lock:
            for name in partitions:
                gens[name] = gens.get(name, 0) + 1
            return {name: int(gens[name]) for name in partitions}

    def checkpoint(self, dirty: Mapping[Slot, Rows], offsets: Mapping[str, int],
                   highs: Mapping[str, float], generations: Mapping[str, int] | None = None,
                   stats: Mapping[str, int] | None = None,
                   expected: Mapping[str, int | None] | None = None,
                   marks: Mapping[str, float] | None = None,
                   extra: Sequence[bytes] = ()) -> int:
        """As RedisWindowStore.checkpoint: every check before any write, under one lock,
        so a refused checkpoint leaves nothing behind. `extra` (insight state as Redis
        commands) has no meaning here and is refused."""
        if extra:
            raise ValueError("the memory store keeps no insight state (extra commands)")
        specs = {s.size: s for s in self.windows}
        unknown = sorted({size for (_, _, size), rows in dirty.items()
                          if len(rows) and size not in specs})
        if unknown:
            raise ValueError(f"window sizes {unknown} are not this store's "
                             f"{sorted(specs)}")
        generations, expected = generations or {}, expected or {}
        with self._lock:
            gens = self._progress.get("generations", {})
            offs = self._progress.get("offsets", {})
            if generations:
                RedisWindowStore._check_generations(
                    generations, [gens.get(p) for p in generations])
            if expected:
                RedisWindowStore._check_offsets(expected, [offs.get(p) for p in expected])
            written = 0
            for (utility, level, size), rows in dirty.items():
                if not len(rows):
                    continue
                if level == "meter":
                    self._put_meters(utility, specs[size], rows, size == min(specs))
                else:
                    self._add_states(utility, specs[size], rows)
                written += len(rows)
            for kind, pairs in (("offsets", offsets), ("highs", highs),
                                ("marks", marks or {})):
                self._progress.setdefault(kind, {}).update(
                    {k: int(v) for k, v in pairs.items()})
            counters = self._progress.setdefault("stats", {})
            for k, n in (stats or {}).items():
                if n:
                    counters[k] = counters.get(k, 0) + int(n)
            counters["checkpoint_ts"] = round(time.time(), 3)
            self.acknowledged.update(offsets)
            return written

    def _put_meters(self, utility: str, spec: WindowSpec, rows: Rows, finest: bool) -> None:
        """Absolute values; a new window's meter joins its partition's index (finest size)
        and its key is trimmed to retention, as trim_meters.lua does after the EXEC."""
        held = self._meters.setdefault((utility, spec.size), {})
        new = np.ones(len(rows), bool) if rows.new is None else rows.new
        words = rows.seen is not None and finest
        mask = seen_mask(rows.seen) if words else None
        known = (rows.first != UNKNOWN).any(axis=1) & (rows.count > 0) \
            if words and rows.first is not None else np.zeros(len(rows), bool)
        trim: set[Meter] = set()
        for i in range(len(rows)):
            meter = (int(rows.k0[i]), int(rows.k1[i]))
            first = np.where(mask[i], rows.first[i], UNKNOWN) if known[i] else None
            held.setdefault(meter, {})[int(rows.window_start[i])] = (
                float(rows.sum[i]), int(rows.count[i]), float(rows.min[i]),
                float(rows.max[i]), rows.seen[i].copy() if words else None, first)
            if new[i]:
                trim.add(meter)
                if finest and rows.part is not None and rows.part[i] >= 0:
                    self._index.setdefault((utility, int(rows.part[i])), set()).add(meter)
        for meter in trim:
            windows = held[meter]
            cut = spec.retention_cut(max(windows), "meter")
            for ws in [w for w in windows if w <= cut]:
                del windows[ws]

    def _add_states(self, utility: str, spec: WindowSpec, rows: Rows) -> None:
        """Deltas merged into totals, all partitions' together (one Redis), with the
        retention commit.lua applies: N the newest window_start ever held."""
        key = (utility, spec.size)
        held = self._states.setdefault(key, {})
        newest = max(self._newest.get(key, int(rows.window_start.max())),
                     int(rows.window_start.max()))
        cut = spec.retention_cut(newest, "state")
        for i in np.flatnonzero(rows.window_start > cut):
            field_ = (int(rows.k0[i]), int(rows.window_start[i]))
            cur = held.get(field_)
            s, c, lo, hi = (float(rows.sum[i]), int(rows.count[i]), float(rows.min[i]),
                            float(rows.max[i]))
            held[field_] = [s, c, lo, hi] if cur is None else \
                [cur[0] + s, cur[1] + c, min(cur[2], lo), max(cur[3], hi)]
        for field_ in [f for f in held if f[1] <= cut]:
            del held[field_]
        self._newest[key] = newest

    def offsets(self) -> dict[str, int]:
        return {k: int(v) for k, v in self._progress.get("offsets", {}).items()}

    def highs(self) -> dict[str, int]:
        return {k: int(v) for k, v in self._progress.get("highs", {}).items()}

    def marks(self) -> dict[str, int]:
        return {k: int(v) for k, v in self._progress.get("marks", {}).items()}

    def watermarks(self) -> dict[str, float]:
        return watermarks_and_newest(self.highs(), self.marks())[0]

    def stats(self) -> dict[str, float]:
        return {k: float(v) for k, v in self._progress.get("stats", {}).items()}

    def set_partitions(self, counts: Mapping[str, int]) -> None:
        self._counts.update({u: int(n) for u, n in counts.items()})

    def partition_counts(self, refresh: bool = False) -> dict[str, int]:
        return dict(self._counts)

    def indexed_meters(self, utility: str, partition: int) -> tuple[np.ndarray, np.ndarray]:
        """In Redis's order (service_id text), so both stores reopen windows alike."""
        meters = sorted(self._index.get((utility, partition), ()),
                        key=lambda m: uuid_text(np.array([m[0]], np.uint64),
                                                np.array([m[1]], np.uint64))[0])
        k0 = np.array([m[0] for m in meters], np.uint64)
        k1 = np.array([m[1] for m in meters], np.uint64)
        return k0, k1

    def loader(self, slot: Slot, newer_than: float) -> Loader | None:
        utility, level, size = slot
        if level != "meter":
            return None   # state windows are deltas: they always start empty
        held = self._meters.get((utility, size), {})
        words = -(-size // 64) if self.windows and size == min(s.size for s in self.windows) \
            else 0

        def load(k0: np.ndarray, k1: np.ndarray, ws: np.ndarray
                 ) -> dict[str, np.ndarray] | None:
            need = np.flatnonzero(ws <= newer_than)
            if not len(need):
                return None
            n = len(ws)
            init: dict[str, np.ndarray] = {
                "sum": np.zeros(n), "count": np.zeros(n, np.int64),
                "min": np.full(n, np.inf), "max": np.full(n, -np.inf),
                "stored": np.zeros(n, bool)}
            if words:
                init["seen"] = np.zeros((n, words), np.uint64)
                init["first"] = np.full((n, 64 * words), UNKNOWN, np.uint64)
            for i in need:
                got = held.get((int(k0[i]), int(k1[i])), {}).get(int(ws[i]))
                if got is None:
                    continue
                s, c, lo, hi, seen, first = got
                init["sum"][i], init["count"][i], init["min"][i], init["max"][i] = \
                    s, c, lo, hi
                init["stored"][i] = c > 0
                if words and seen is not None:
                    init["seen"][i] = seen
                if words and first is not None:
                    init["first"][i] = first
            return init
        return load

    def read_windows(self, level: str, utility: str, size: int, key: str | None = None
                     ) -> pd.DataFrame:
        cols = ["utility", "key", "window_start", "window_end", "sum", "count", "min", "max"]
        if level == "state":
            items = [(STATES[code], ws, v[:4]) for (code, ws), v in
                     self._states.get((utility, size), {}).items()
                     if key is None or STATES[code] == key]
        else:   # key=None: every meter (in memory that costs no scan, unlike Redis)
            meters = self._meters.get((utility, size), {})
            if key is not None:
                k, _ = uuid_keys(np.array([key], "S36"))
                mine = (int(k[0, 0]), int(k[0, 1]))
                meters = {mine: meters[mine]} if mine in meters else {}
            names = dict(zip(meters, uuid_text(np.array([m[0] for m in meters], np.uint64),
                                               np.array([m[1] for m in meters], np.uint64)),
                             strict=True))
            items = [(names[m], ws, v[:4]) for m, held in meters.items()
                     for ws, v in held.items()]
        starts = np.array([ws for _, ws, _ in items], np.int64)
        df = pd.DataFrame({"utility": utility, "key": [k for k, _, _ in items],
                           "window_start": starts, "window_end": starts + size,
                           "sum": np.array([v[0] for *_, v in items], np.float64),
                           "count": np.array([v[1] for *_, v in items], np.int64),
                           "min": np.array([v[2] for *_, v in items], np.float64),
                           "max": np.array([v[3] for *_, v in items], np.float64)})
        return df[cols].sort_values(["key", "window_start"]).reset_index(drop=True)

    # ---- the embedded engine's final windows

    def put_final(self, final: dict[Slot, Rows]) -> None:
        for slot, rows in final.items():
            if len(rows):
                self._parts.setdefault(slot, []).append(rows_frame(*slot, rows))

    def final(self, slot: Slot) -> pd.DataFrame:
        """Final windows of a slot. A state window can be handed out twice: final by the
        partitions known at the time, then fed by a partition seen later (the embedded
        engine learns its partitions from the input). Its parts merge, as the live
        path's deltas do in Redis."""
        parts = self._parts.get(slot, [])
        if len(parts) > 1:
            df = pd.concat(parts, ignore_index=True)
            keys = ["utility", "key", "window_start", "window_end"]
            if df.duplicated(keys).any():
                df = df.groupby(keys, as_index=False, sort=False).agg(
                    {"sum": "sum", "count": "sum", "min": "min", "max": "max"})
            self._parts[slot] = parts = [df]
        return parts[0] if parts else rows_frame(*slot, Rows.empty())

    def retain(self, slot: Slot, spec: WindowSpec) -> None:
        """The retention rule Redis applies (WindowSpec.retention_cut), per key as Redis
        keys them: each meter's windows alone, a utility's state windows all together. So
        the embedded engine and the live path keep the same windows."""
        df = self.final(slot)
        if not len(df):
            return
        level = slot[1]
        ws = df["window_start"].to_numpy()
        if ws.min() > spec.retention_cut(ws.max(), level):
            return   # nothing is old enough for any key: the usual case, O(n) and no groupby
        newest = ws.max() if level == "state" else \
            df.groupby("key")["window_start"].transform("max").to_numpy()
        kept = ws > spec.retention_cut(newest, level)
        self._parts[slot] = [df[kept].reset_index(drop=True)]
