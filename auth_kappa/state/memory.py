"""Final windows kept in memory for the embedded engine, with event-time retention."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from auth_kappa.state.window_table import Rows
from auth_kappa.topology.processor import Slot, rows_frame


@dataclass
class MemoryWindowStore:
    _parts: dict[Slot, list[pd.DataFrame]] = field(default_factory=dict)

    def put_final(self, final: dict[Slot, Rows]) -> None:
        for slot, rows in final.items():
            if len(rows):
                self._parts.setdefault(slot, []).append(rows_frame(*slot, rows))

    def final(self, slot: Slot) -> pd.DataFrame:
        parts = self._parts.get(slot, [])
        if len(parts) > 1:
            self._parts[slot] = parts = [pd.concat(parts, ignore_index=True)]
        return parts[0] if parts else rows_frame(*slot, Rows.empty())

    def expire_before(self, slot: Slot, window_start: float) -> None:
        df = self.final(slot)
        if len(df) and df["window_start"].min() < window_start:
            self._parts[slot] = [df[df["window_start"] >= window_start].reset_index(drop=True)]
