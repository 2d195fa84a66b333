"""Window state in memory: the WindowStore contract (state/protocol.py) without Redis.

The live runtime checkpoints here as it does to Redis (claim, checkpoint, loader, ...),
with the same meaning: tests/test_store_parity.py runs one suite on both stores. The
embedded engine is that runtime over this store (runtime/embedded.py), so its windows,
retention included, are what the workers would leave in Redis. The store object
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

from auth_kappa.state.layout import watermarks_and_newest
from auth_kappa.state.memory_columns import MeterColumns, StateColumns
from auth_kappa.state.redis_store import RedisWindowStore
from auth_kappa.topology.keys import uuid_keys, uuid_text
from auth_kappa.topology.processor import Slot
from auth_kappa.topology.schema import STATES
from auth_kappa.topology.window_table import UNKNOWN, VALUE_COLUMNS, Loader, Rows
from auth_kappa.topology.windows import WindowSpec


@dataclass
class MemoryWindowStore:
    windows: tuple[WindowSpec, ...] = ()   # the sizes a runtime checkpoints (retention)
    cluster: bool = False
    acknowledged: dict[str, int] = field(default_factory=dict)
    # (utility, size) -> its meter windows: absolute, like Redis's HSETs
    _meters: dict[tuple[str, int], MeterColumns] = field(default_factory=dict)
    # (utility, size) -> its state windows: totals of every partition's deltas
    _states: dict[tuple[str, int], StateColumns] = field(default_factory=dict)
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
        words = -(-spec.size // 64) if finest else 0
        self._meters.setdefault((utility, spec.size), MeterColumns(words)).put(rows, spec)

    def _add_states(self, utility: str, spec: WindowSpec, rows: Rows) -> None:
        """Deltas merged into totals, all partitions' together (one Redis), with the
        retention commit.lua applies: N the newest window_start ever held."""
        self._states.setdefault((utility, spec.size), StateColumns()).add(rows, spec)

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
        finest = min((s.size for s in self.windows), default=0)
        held = self._meters.get((utility, finest))
        meters = sorted(held.partitions.get(partition, ()) if held is not None else (),
                        key=lambda m: uuid_text(np.array([m[0]], np.uint64),
                                                np.array([m[1]], np.uint64))[0])
        k0 = np.array([m[0] for m in meters], np.uint64)
        k1 = np.array([m[1] for m in meters], np.uint64)
        return k0, k1

    def drop_final_firsts(self, utility: str, partition: int, k0: np.ndarray,
                          k1: np.ndarray, cut: float) -> int:
        finest = min((s.size for s in self.windows), default=0)
        held = self._meters.get((utility, finest))
        return 0 if held is None or not np.isfinite(cut) else held.drop_firsts(k0, k1, cut)

    def loader(self, slot: Slot, newer_than: float) -> Loader | None:
        utility, level, size = slot
        if level != "meter":
            return None   # state windows are deltas: they always start empty
        words = -(-size // 64) if self.windows and size == min(s.size for s in self.windows) \
            else 0

        def load(k0: np.ndarray, k1: np.ndarray, ws: np.ndarray
                 ) -> dict[str, np.ndarray] | None:
            need = np.flatnonzero(ws <= newer_than)
            held = self._meters.get((utility, size))
            if not len(need) or held is None:
                return None
            n = len(ws)
            init: dict[str, np.ndarray] = {
                "sum": np.zeros(n), "count": np.zeros(n, np.int64),
                "min": np.full(n, np.inf), "max": np.full(n, -np.inf),
                "stored": np.zeros(n, bool)}
            if words:
                init["seen"] = np.zeros((n, words), np.uint64)
                init["first"] = np.full((n, 64 * words), UNKNOWN, np.uint64)
            with self._lock:   # not in the middle of a checkpoint's writes
                codes, pos = held.find(k0[need], k1[need], ws[need])
                got = pos >= 0
                at, to = pos[got], need[got]
                for name in VALUE_COLUMNS:
                    init[name][to] = held.col(name)[at]
                init["stored"][to] = held.col("count")[at] > 0
                if words and held.words:
                    init["seen"][to] = held.col("seen")[at]
                    for i, code in zip(to, codes[got].tolist(), strict=True):
                        if code in held.first:
                            init["first"][i] = held.first[code]
            return init
        return load

    def read_windows(self, level: str, utility: str, size: int, key: str | None = None
                     ) -> pd.DataFrame:
        cols = ["utility", "key", "window_start", "window_end", "sum", "count", "min", "max"]
        held: MeterColumns | StateColumns
        if level == "state":
            held = self._states.get((utility, size), StateColumns())
            names = np.array(STATES, dtype=object)[held.col("k0").astype(np.int64)]
            pick = np.ones(len(held), bool) if key is None else names == key
            keys = names[pick]
        else:   # key=None: every meter (in memory that costs no scan, unlike Redis)
            held = self._meters.get((utility, size), MeterColumns(0))
            pick = np.ones(len(held), bool)
            if key is not None:
                k, _ = uuid_keys(np.array([key], "S36"))
                pick = (held.col("k0") == k[0, 0]) & (held.col("k1") == k[0, 1])
            keys = uuid_text(held.col("k0")[pick], held.col("k1")[pick])
        starts = held.col("window_start")[pick]
        df = pd.DataFrame({"utility": utility, "key": keys, "window_start": starts,
                           "window_end": starts + size,
                           **{c: held.col(c)[pick] for c in VALUE_COLUMNS}})
        return df[cols].sort_values(["key", "window_start"]).reset_index(drop=True)
