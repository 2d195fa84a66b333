"""The topology as one object: every runtime feeds it message batches and applies its output.

Flow per batch: decode ► validate ► late? ► dedup (finest meter window) ► add to every
window size, per meter and per state ► advance the watermark ► hand out final windows.
It never talks to Kafka, Redis or S3; runtimes own I/O, which is what lets live,
replay and embedded share every line of the math.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from auth_kappa.topology.decode import Message, decode
from auth_kappa.topology.keys import uuid_text
from auth_kappa.topology.quarantine import Rejected, reject_rows
from auth_kappa.topology.readings import Readings
from auth_kappa.topology.schema import STATES, UTILITIES
from auth_kappa.topology.validate import Rules, placed, validate
from auth_kappa.topology.watermark import Watermark, late_mask
from auth_kappa.topology.window_table import Loader, Rows, WindowTable, group_labels
from auth_kappa.topology.windows import WindowSpec

if TYPE_CHECKING:
    from auth_kappa.config import Config

LEVELS = ("meter", "state")
Slot = tuple[str, str, int]   # (utility, level, window size)


@dataclass
class StepResult:
    """What one batch produced; the runtime writes it (atomically, where it can)."""

    utility: str
    final: dict[Slot, Rows]
    late: Readings
    rejects: list[Rejected]
    accepted: int
    duplicates: int
    watermark: float
    # partition -> (accepted, duplicates): what each partition's checkpoint must count
    by_partition: dict[int, tuple[int, int]] = field(default_factory=dict)
    # resends of a seen second with another value: the first stays, these are quarantined
    # (so also in rejects), counted apart from exact duplicates; and per partition
    conflicts: int = 0
    conflicts_by_partition: dict[int, int] = field(default_factory=dict)


@dataclass
class Topology:
    windows: Sequence[WindowSpec]
    grace: float = 30.0
    idle_timeout: float = 30.0
    rules: Rules = field(default_factory=Rules)
    clock: Callable[[], float] = time.monotonic
    loader: Callable[[Slot], Loader | None] = lambda slot: None
    caught_up: Callable[[str, Hashable], bool] = lambda utility, partition: True
    tables: dict[Slot, WindowTable] = field(default_factory=dict)
    watermarks: dict[str, Watermark] = field(default_factory=dict)
    # state windows keyed (state, partition): deltas a runtime commits partition by partition
    state_per_partition: bool = False
    # utility -> its topic's partition count, where each meter must arrive (a Redis
    # Cluster store keeps a meter's keys in its partition's slot): others are quarantined
    placement: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Config, *, live: bool) -> Topology:
        """The one wiring from configuration: live workers (and a rebuild's Kafka catch-up)
        time idle partitions out; a replay reads finite, ordered input and never does."""
        return cls(config.window_specs(), grace=config.grace,
                   idle_timeout=config.idle_timeout if live else math.inf,
                   rules=Rules.from_config(config))

    @classmethod
    def finite(cls, windows: Sequence[WindowSpec], grace: float) -> Topology:
        """In-process input (the embedded engine, the test driver) is finite and ends with
        an explicit flush, so no partition ever times out as idle."""
        return cls(windows, grace=grace, idle_timeout=math.inf)

    def __post_init__(self) -> None:
        self.windows = tuple(sorted(self.windows))
        if not self.windows:
            raise ValueError("at least one window size is needed")
        for u in UTILITIES:
            self.watermarks[u] = Watermark(self.idle_timeout, self.clock,
                                           caught_up=self._caught_up_for(u))
            for spec in self.windows:
                for level in LEVELS:
                    dedup = level == "meter" and spec == self.finest
                    self.tables[(u, level, spec.size)] = WindowTable(spec.size, dedup)

    def _caught_up_for(self, utility: str) -> Callable[[Hashable], bool]:
        return lambda partition: self.caught_up(utility, partition)

    @property
    def finest(self) -> WindowSpec:
        return self.windows[0]

    def reset(self) -> None:
        """Forget every open window (a runtime reloads what it needs from its store)."""
        for table in self.tables.values():
            table.take(np.ones(len(table), bool), remove=True)
            table.mixed = False

    def assign(self, utility: str, partitions: Iterable[Hashable]) -> None:
        self.watermarks[utility].assign(partitions)

    def final_cut(self, spec: WindowSpec, watermark: float) -> float:
        """Windows of this size starting before the cut are final (end + grace <= watermark)."""
        return float(self.final_cut_array(spec, np.float64(watermark)))

    def final_cut_array(self, spec: WindowSpec, clocks: np.ndarray) -> np.ndarray:
        """final_cut for an array of clocks (-inf: nothing final, +inf: all)."""
        with np.errstate(invalid="ignore"):
            cut = np.floor((clocks - self.grace - spec.size) / spec.size) * spec.size + spec.size
        return np.where(np.isfinite(clocks), cut, clocks)

    def process(self, utility: str, messages: Sequence[Message]) -> StepResult:
        """One batch of one topic (any of its partitions)."""
        batch, rejects = decode(utility, messages)
        return self.process_readings(utility, batch, rejects)

    def process_readings(self, utility: str, batch: Readings,
                         rejects: Sequence[Rejected] = ()) -> StepResult:
        """One batch already decoded (decode_table makes one from typed columns: replay
        needs no bytes). Rows are taken in the order given, which decides the first of two
        readings for one second; rejects: what decoding turned away, reported first."""
        rejects = list(rejects)
        batch, keys, bad = validate(batch, self.rules)
        if self.placement.get(utility) and len(batch):
            batch, keys, misplaced = placed(batch, keys, self.placement[utility])
            bad += misplaced
        wm = self.watermarks[utility]
        # a clock never passes the wall clock plus the allowed skew, even when a record's
        # own timestamp is wrong (readings past it are quarantined as "future" anyway)
        ceiling = self.rules.clock() + self.rules.max_future
        is_late = late_mask(wm, batch.partition, batch.end_ts, self.finest.size, self.grace,
                            ceiling)
        if not is_late.any():   # the usual case (and always in a replay): no copies
            late, ok, ok_keys = batch.take(np.zeros(0, np.int64)), batch, keys
        else:
            on_time = np.flatnonzero(~is_late)
            late = batch.take(np.flatnonzero(is_late))
            ok, ok_keys = batch.take(on_time), keys[on_time]
        by_partition, conflicts = self._accumulate(utility, ok, ok_keys)
        bad += reject_rows(conflicts, ["conflicting duplicate"] * len(conflicts))
        for p, high in _highs(batch):
            wm.observe(p, min(high, ceiling))
        return StepResult(utility, self.pop_final(utility), late, rejects + bad,
                          sum(a for a, _ in by_partition.values()),
                          sum(d for _, d in by_partition.values()), wm.current(), by_partition,
                          len(conflicts), _per_partition(conflicts.partition))

    def _accumulate(self, utility: str, batch: Readings, keys: np.ndarray
                    ) -> tuple[dict[int, tuple[int, int]], Readings]:
        """Adds the batch; returns (accepted, duplicates) per source partition, and the
        conflicting resends (kept out)."""
        if not len(batch):
            return {}, batch
        k0, k1 = keys[:, 0].copy(), keys[:, 1].copy()
        fine = self.tables[(utility, "meter", self.finest.size)]
        ws = self.finest.start(batch.end_ts)
        rows = fine.locate(k0, k1, ws, self.loader((utility, "meter", self.finest.size)))
        fresh, conflict = fine.dedup(rows, batch.end_ts, batch.consumption)
        conflicts = batch.take(np.flatnonzero(conflict))
        values, end = batch.consumption[fresh], batch.end_ts[fresh]
        k0, k1, rows, ws = k0[fresh], k1[fresh], rows[fresh], ws[fresh]
        part = batch.partition[fresh]
        s0 = batch.state_code[fresh].astype(np.uint64)
        s1 = part.astype(np.uint64) if self.state_per_partition else np.zeros(len(s0), np.uint64)
        limit = 4 * len(rows) + 4096
        for spec in self.windows:
            starts = ws if spec == self.finest else spec.start(end)
            slot_of = starts // spec.size
            for level, (a, b) in (("meter", (k0, k1)), ("state", (s0, s1))):
                slot = (utility, level, spec.size)
                table = self.tables[slot]
                if table is fine:
                    r = rows
                else:   # a finest row is one meter: with the window, it names the coarser one
                    labels = group_labels(
                        [rows, slot_of] if level == "meter" else [s0, s1, slot_of], limit)
                    r = table.locate(a, b, starts, self.loader(slot)) if labels is None \
                        else table.locate_grouped(labels, a, b, starts, self.loader(slot))
                if level == "meter":
                    table.add(r, values, part, batch.state_code[fresh], batch.type_code[fresh])
                else:
                    table.add(r, values)
        parts, first = np.unique(batch.partition, return_inverse=True)
        accepted = np.bincount(first, weights=fresh, minlength=len(parts))
        dups = np.bincount(first, weights=~fresh & ~conflict, minlength=len(parts))
        return {int(p): (int(a), int(d)) for p, a, d in
                zip(parts, accepted, dups, strict=True)}, conflicts

    def pop_final(self, utility: str) -> dict[Slot, Rows]:
        """Per-meter windows are final by their partition's clock (a meter lives on one
        partition), per-state windows by the utility's watermark (every partition). A
        window held without a reading of its own (a stored one, loaded for a duplicate)
        goes with the watermark."""
        wm = self.watermarks[utility]
        low = wm.current()
        out = {}
        for spec in self.windows:
            for level in LEVELS:
                table = self.tables[(utility, level, spec.size)]
                cut: float | np.ndarray = self.final_cut(spec, low)
                if level == "meter" and len(table) and not wm.ended:
                    part = table.col("part")
                    cut = self.final_cut_array(spec, np.where(part >= 0, wm.highs(part), low))
                out[(utility, level, spec.size)] = table.pop_final(cut)
        return out

    def pop_dirty(self) -> dict[Slot, Rows]:
        return {slot: table.pop_dirty() for slot, table in self.tables.items()}

    def open_windows(self, utility: str, level: str, size: int) -> Rows:
        return self.tables[(utility, level, size)].snapshot()

    def end_of_input(self) -> dict[Slot, Rows]:
        """Watermark to +inf: every window is final."""
        out: dict[Slot, Rows] = {}
        for u, wm in self.watermarks.items():
            wm.end_of_input()
            out.update(self.pop_final(u))
        return out


def _per_partition(partition: np.ndarray) -> dict[int, int]:
    parts, n = np.unique(partition, return_counts=True)
    return {int(p): int(k) for p, k in zip(parts, n, strict=True)}


def _highs(batch: Readings) -> list[tuple[int, int]]:
    if not len(batch):
        return []
    s = pd.Series(batch.end_ts).groupby(batch.partition).max()
    return [(int(p), int(h)) for p, h in s.items()]


def rows_frame(utility: str, level: str, size: int, rows: Rows) -> pd.DataFrame:
    """The public window shape: utility, key, window_start, window_end, sum, count, min, max."""
    keys = uuid_text(rows.k0, rows.k1) if level == "meter" else \
        np.array(STATES, dtype=object)[rows.k0.astype(np.int64)]
    return pd.DataFrame({
        "utility": utility, "key": keys, "window_start": rows.window_start,
        "window_end": rows.window_start + size, "sum": rows.sum, "count": rows.count,
        "min": rows.min, "max": rows.max,
    })
