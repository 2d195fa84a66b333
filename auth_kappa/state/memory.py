"""Final windows kept in memory for the embedded engine, with event-time retention."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from auth_kappa.topology.processor import Slot, rows_frame
from auth_kappa.topology.window_table import Rows
from auth_kappa.topology.windows import WindowSpec


@dataclass
class MemoryWindowStore:
    _parts: dict[Slot, list[pd.DataFrame]] = field(default_factory=dict)

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
