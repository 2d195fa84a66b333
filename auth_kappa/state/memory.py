"""In-process window store for the embedded engine: partial aggregates, merged lazily.

Appending partials and compacting when they outgrow the merged table keeps the cost
amortised O(n log n) instead of a Python dict update per window per batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from auth_kappa.topology.aggregate import empty_aggregates, merge
from auth_kappa.topology.processor import StepResult


@dataclass
class MemoryWindowStore:
    _merged: dict[tuple[str, int], pd.DataFrame] = field(default_factory=dict)
    _pending: dict[tuple[str, int], list[pd.DataFrame]] = field(default_factory=dict)
    _pending_rows: dict[tuple[str, int], int] = field(default_factory=dict)

    def apply(self, result: StepResult) -> None:
        for slot, part in result.aggregates.items():
            if part.empty:
                continue
            self._pending.setdefault(slot, []).append(part)
            self._pending_rows[slot] = self._pending_rows.get(slot, 0) + len(part)
            if self._pending_rows[slot] > max(50_000, 2 * len(self._merged.get(slot, ()))):
                self._compact(slot)

    def _compact(self, slot: tuple[str, int]) -> pd.DataFrame:
        parts = [self._merged.get(slot, empty_aggregates()), *self._pending.pop(slot, [])]
        self._pending_rows[slot] = 0
        self._merged[slot] = merge(parts)
        return self._merged[slot]

    def windows(self, level: str, size: int) -> pd.DataFrame:
        return self._compact((level, size))

    def expire_before(self, size: int, window_start: float) -> None:
        """Event-time retention: drop windows that started before the cut."""
        for slot in [s for s in self._merged if s[1] == size]:
            df = self._compact(slot)
            self._merged[slot] = df[df["window_start"] >= window_start].reset_index(drop=True)
