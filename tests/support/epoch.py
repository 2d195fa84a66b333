"""Engine frames carry UTC timestamps; tests that compare with epoch-second references
(brute force, Redis keys, published frames) convert with these."""

from __future__ import annotations

import numpy as np
import pandas as pd


def epoch(times: pd.Series) -> np.ndarray:
    """datetime64[ns, UTC] column ► integer epoch seconds."""
    return times.to_numpy("datetime64[s]").astype(np.int64)


def seconds(ts: pd.Timestamp | None) -> float:
    """A watermark (pd.Timestamp, or None before any reading) ► epoch seconds."""
    return -np.inf if ts is None else ts.timestamp()
