"""Semantic checks on typed readings, column at a time; each failure keeps its reason."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from auth_kappa.topology.quarantine import Rejected, reject_rows
from auth_kappa.topology.schema import METER_TYPES, STATES, UTILITIES

UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
MIN_TS = 946684800  # 2000-01-01T00:00:00Z: older is not a smart-meter reading


@dataclass(frozen=True)
class Rules:
    max_consumption: float = 1e6      # per heartbeat, any utility: far above any real meter
    max_interval: int = 3600          # end_ts - start_ts
    min_ts: int = MIN_TS
    max_future: float = 86400.0       # seconds ahead of the wall clock; only bounds garbage
    clock: Callable[[], float] = time.time


def validate(batch: pd.DataFrame, rules: Rules = Rules()) -> tuple[pd.DataFrame, list[Rejected]]:
    if batch.empty:
        return batch, []
    checks: list[tuple[str, pd.Series]] = [
        ("unknown utility", ~batch["utility"].isin(UTILITIES)),
        ("service_id is not a uuid", ~batch["service_id"].str.fullmatch(UUID_RE).fillna(False)),
        ("unknown meter type", ~batch["type"].isin(METER_TYPES)),
        ("unknown state", ~batch["state"].isin(STATES)),
        ("consumption is not finite", ~np.isfinite(batch["consumption"])),
        ("consumption is negative", batch["consumption"] < 0),
        ("consumption is implausibly large", batch["consumption"] > rules.max_consumption),
        ("end_ts is not after start_ts", batch["end_ts"] <= batch["start_ts"]),
        ("reading interval too long", batch["end_ts"] - batch["start_ts"] > rules.max_interval),
        ("timestamp before 2000 (ancient)", batch["start_ts"] < rules.min_ts),
        ("timestamp in the far future", batch["end_ts"] > rules.clock() + rules.max_future),
    ]
    reason = pd.Series(None, index=batch.index, dtype=object)
    for why, bad in checks:
        reason = reason.mask(reason.isna() & bad.to_numpy(dtype=bool), why)
    bad = reason.notna().to_numpy()
    if not bad.any():
        return batch, []
    return batch[~bad].reset_index(drop=True), reject_rows(batch[bad], reason[bad])
