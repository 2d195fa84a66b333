"""The frames Engine returns, shaped once for pandas users.

Inside, the topology keeps times as integer epoch seconds (cheap to floor and compare).
Users get what pandas expects: times as `datetime64[ns, UTC]`, a `unit` column on every
frame that carries a quantity (a column, not `df.attrs`, because it survives concat,
groupby, CSV and Parquet), and the same columns and dtypes whether a frame has rows or not.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from auth_kappa.topology.schema import UNITS

TIME = "datetime64[ns, UTC]"

WINDOW_DTYPES: dict[str, str] = {
    "utility": "str", "key": "str", "window_start": TIME, "window_end": TIME,
    "sum": "float64", "count": "int64", "min": "float64", "max": "float64",
    "estimated": "float64", "unit": "str",
}
LATE_DTYPES: dict[str, str] = {
    "utility": "str", "service_id": "str", "user_name": "str", "type": "str",
    "start_ts": TIME, "state": "str", "consumption": "float64", "end_ts": TIME,
    "partition": "int32", "offset": "int64", "unit": "str",
}

QUARANTINE_DTYPES: dict[str, object] = {
    "utility": "str", "partition": "int64", "offset": "int64", "raw": object, "reason": "str",
}


def times(seconds: pd.Series | np.ndarray) -> pd.Series:
    """Epoch seconds ► UTC timestamps at nanosecond resolution (pandas 3 would infer µs)."""
    return pd.Series(pd.to_datetime(np.asarray(seconds, np.int64), unit="s", utc=True)
                     .as_unit("ns"))


def timestamp(seconds: float) -> pd.Timestamp | None:
    """A watermark: None before any reading; pd.Timestamp.max (UTC) after end of input,
    when every window is final."""
    if seconds == -math.inf or math.isnan(seconds):
        return None
    if seconds == math.inf:
        return pd.Timestamp.max.tz_localize("UTC")
    return pd.Timestamp(seconds, unit="s", tz="UTC").as_unit("ns")


def window_frame(df: pd.DataFrame, utility: str) -> pd.DataFrame:
    """Epoch-second windows (internal shape) ► the public frame, sorted by key and start."""
    df = df.sort_values(["key", "window_start"]).reset_index(drop=True)
    out = pd.DataFrame({c: df[c].to_numpy() for c in ("utility", "key")})
    out["window_start"], out["window_end"] = times(df["window_start"]), times(df["window_end"])
    for c in ("sum", "count", "min", "max"):
        out[c] = df[c].to_numpy()
    # readings a gap lost, estimated (insights/estimates.py); NaN: not estimated here
    out["estimated"] = df["estimated"].to_numpy() if "estimated" in df else np.nan
    out["unit"] = UNITS[utility]
    return out.astype(WINDOW_DTYPES)


def quarantine_frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    """Rejected messages (raw bytes and the reason), the same dtypes with none."""
    return pd.DataFrame(rows, columns=list(QUARANTINE_DTYPES)).astype(QUARANTINE_DTYPES)


def late_frame(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Late readings of every utility, one row each, with their columns even when none."""
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in LATE_DTYPES.items()})
    df = pd.concat(parts, ignore_index=True)
    df["start_ts"], df["end_ts"] = times(df["start_ts"]), times(df["end_ts"])
    df["unit"] = df["utility"].map(UNITS)
    return df[list(LATE_DTYPES)].astype(LATE_DTYPES)
