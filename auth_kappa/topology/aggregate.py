"""Sum, count, min and max per (utility, key, window): partial aggregates that merge exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd

AGG_COLUMNS: tuple[str, ...] = ("utility", "key", "window_start", "sum", "count", "min", "max")
LEVELS: dict[str, str] = {"meter": "service_id", "state": "state"}


def aggregate(batch: pd.DataFrame, window_start: np.ndarray, level: str) -> pd.DataFrame:
    """One row per (utility, key, window_start) of this batch; associative with merge()."""
    if batch.empty:
        return empty_aggregates()
    frame = pd.DataFrame({
        "utility": batch["utility"].to_numpy(),
        "key": batch[LEVELS[level]].to_numpy(),
        "window_start": window_start,
        "value": batch["consumption"].to_numpy(dtype=np.float64),
    })
    out = frame.groupby(["utility", "key", "window_start"], sort=True, observed=True)["value"].agg(
        ["sum", "count", "min", "max"]).reset_index()
    out["count"] = out["count"].astype(np.int64)
    return out[list(AGG_COLUMNS)]


def merge(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Combine partial aggregates of the same windows (order-independent but for float sums)."""
    parts = [p for p in parts if not p.empty]
    if not parts:
        return empty_aggregates()
    if len(parts) == 1:
        return parts[0].reset_index(drop=True)
    both = pd.concat(parts, ignore_index=True)
    out = both.groupby(["utility", "key", "window_start"], sort=True).agg(
        sum=("sum", "sum"), count=("count", "sum"), min=("min", "min"), max=("max", "max"),
    ).reset_index()
    return out[list(AGG_COLUMNS)]


def empty_aggregates() -> pd.DataFrame:
    return pd.DataFrame({
        "utility": pd.Series([], dtype=object), "key": pd.Series([], dtype=object),
        "window_start": pd.Series([], dtype=np.int64), "sum": pd.Series([], dtype=np.float64),
        "count": pd.Series([], dtype=np.int64), "min": pd.Series([], dtype=np.float64),
        "max": pd.Series([], dtype=np.float64),
    })
