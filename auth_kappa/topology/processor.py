"""The topology as one object: every runtime feeds it message batches and applies its output.

It owns only what must live with the partitions it reads (watermarks, dedup sets).
Window values go to a store the runtime chooses (memory, Redis); the processor never
talks to Kafka, Redis or S3, which is what lets live, replay and embedded share it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from auth_kappa.topology.aggregate import LEVELS, aggregate
from auth_kappa.topology.decode import Message, decode
from auth_kappa.topology.dedup import Dedup, reading_ids
from auth_kappa.topology.quarantine import Rejected
from auth_kappa.topology.schema import UTILITIES
from auth_kappa.topology.validate import Rules, validate
from auth_kappa.topology.watermark import NO_WATERMARK, Watermark
from auth_kappa.topology.windows import WindowSpec


@dataclass
class StepResult:
    """What one batch produced; the runtime writes it (atomically, where it can)."""

    utility: str
    aggregates: dict[tuple[str, int], pd.DataFrame]   # (level, window size) -> partial aggs
    late: pd.DataFrame
    rejects: list[Rejected]
    accepted: int
    duplicates: int
    watermark: float
    final_before: float   # windows starting before this are final (finest size)


@dataclass
class Topology:
    windows: Sequence[WindowSpec]
    grace: float = 30.0
    idle_timeout: float = 30.0
    rules: Rules = field(default_factory=Rules)
    clock: Callable[[], float] = time.monotonic
    _watermarks: dict[str, Watermark] = field(default_factory=dict)
    _dedup: dict[str, Dedup] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.windows = tuple(sorted(self.windows))
        if not self.windows:
            raise ValueError("at least one window size is needed")
        for u in UTILITIES:
            self._watermarks[u] = Watermark(self.idle_timeout, self.clock)
            self._dedup[u] = Dedup()

    @property
    def finest(self) -> WindowSpec:
        return self.windows[0]

    def watermark(self, utility: str) -> Watermark:
        return self._watermarks[utility]

    def dedup(self, utility: str) -> Dedup:
        return self._dedup[utility]

    def assign(self, utility: str, partitions: Iterable[Hashable]) -> None:
        self._watermarks[utility].assign(partitions)

    def final_before(self, watermark: float) -> float:
        """Finest windows whose start is below this are final: end + grace <= watermark."""
        if watermark in (math.inf, -math.inf):
            return watermark
        size = self.finest.size
        return math.floor((watermark - self.grace - size) / size) * size + size

    def process(self, utility: str, messages: Sequence[Message],
                partition: Hashable | None = None) -> StepResult:
        """One batch from one topic (a partition, or several of the same topic)."""
        batch, rejects = decode(utility, messages)
        batch, bad = validate(batch, self.rules)
        rejects += bad
        wm = self._watermarks[utility]
        cut = self.final_before(wm.current())
        ws = self.finest.start(batch["end_ts"].to_numpy())
        late_mask = ws < cut
        late = batch[late_mask].reset_index(drop=True)
        batch, ws = batch[~late_mask], ws[~late_mask]
        keep = self._dedup[utility].first_seen(reading_ids(batch), ws) if len(batch) else \
            np.zeros(0, dtype=bool)
        duplicates = int((~keep).sum())
        batch = batch[keep]
        aggs = {}
        for spec in self.windows:
            starts = spec.start(batch["end_ts"].to_numpy())
            for level in LEVELS:
                aggs[(level, spec.size)] = aggregate(batch, starts, level)
        self._advance(utility, batch, late, partition)
        new_wm = wm.current()
        new_cut = self.final_before(new_wm)
        if new_cut > NO_WATERMARK:
            self._dedup[utility].forget_before(int(new_cut) if math.isfinite(new_cut) else 2**62)
        return StepResult(utility, aggs, late, rejects, len(batch), duplicates, new_wm, new_cut)

    def _advance(self, utility: str, batch: pd.DataFrame, late: pd.DataFrame,
                 partition: Hashable | None) -> None:
        wm = self._watermarks[utility]
        frames = [f for f in (batch, late) if len(f)]
        for f in frames:
            if partition is not None:
                wm.observe(partition, int(f["end_ts"].max()))
            else:
                for p, high in f.groupby("partition")["end_ts"].max().items():
                    wm.observe(int(p), int(high))

    def end_of_input(self) -> None:
        for wm in self._watermarks.values():
            wm.end_of_input()
        for d in self._dedup.values():
            d.forget_before(2**62)
