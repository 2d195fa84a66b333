"""Estimates of the readings a gap lost, kept apart from what was measured.

Each missing reading (one per heartbeat between the readings around the gap) gets the
meter's own use in that hour of the week (the same hour 7 days earlier, per reading),
or, without it, a straight line between the readings before and after the gap. Measured
windows never include them: frames show them in their own `estimated` column.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from auth_kappa.insights.alerts import Alert
from auth_kappa.insights.spikes import HOUR, SpikeDetector

WEEK = 7 * 86400


@dataclass
class Estimates:
    heartbeat: float = 5.0
    keep: bool = True     # keep the readings for window frames (the embedded engine)
    # (utility, service_id) -> [(end_ts array, value array)] of estimated readings
    readings: dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray]]] = \
        field(default_factory=dict)

    def fill(self, alert: Alert, before: float, after: float, history: SpikeDetector) -> None:
        """Estimate a closed gap's readings; the alert's detail says how much and how."""
        missing = int(alert.value)
        if missing <= 0:
            return
        times = alert.start + self.heartbeat * np.arange(1, missing + 1)
        week_ago = np.array([history.hour_total(alert.service_id, int(h) - WEEK)
                             for h in times // HOUR * HOUR])
        per_reading = week_ago / (HOUR / self.heartbeat)
        ends = [v for v in (before, after) if np.isfinite(v)]
        lo, hi = (before, after) if len(ends) == 2 else (ends * 2 or [0.0, 0.0])
        line = lo + (hi - lo) * np.arange(1, missing + 1) / (missing + 1)
        values = np.where(np.isfinite(per_reading), per_reading, line)
        if self.keep:
            self.readings.setdefault((alert.utility, alert.service_id), []).append(
                (times, values))
        how = "the same hours last week" if np.isfinite(per_reading).all() else \
            "a line between the readings around it" if not np.isfinite(per_reading).any() \
            else "the same hours last week where known, else a line"
        alert.estimated = float(values.sum())
        alert.detail += f"; estimated {alert.estimated:.4g} from {how}"

    def frame(self, utility: str, size: int) -> pd.DataFrame:
        """service_id, window_start, estimated: the estimates of a utility per window."""
        parts = [pd.DataFrame({"service_id": sid, "window_start": times // size * size,
                               "estimated": values})
                 for (u, sid), found in self.readings.items() if u == utility
                 for times, values in found]
        if not parts:
            return pd.DataFrame({"service_id": pd.Series(dtype="str"),
                                 "window_start": pd.Series(dtype="int64"),
                                 "estimated": pd.Series(dtype="float64")})
        df = pd.concat(parts, ignore_index=True).astype({"window_start": "int64"})
        return df.groupby(["service_id", "window_start"], as_index=False)["estimated"].sum()


def with_estimates(df: pd.DataFrame, estimates: Estimates,
                   profile: Mapping[str, tuple[str, str]], level: str, utility: str,
                   size: int) -> pd.DataFrame:
    """Windows (internal frame) with an `estimated` column: 0 where nothing was lost. Only
    windows with readings: one a gap left empty is not made up (its share is in the gap's
    detail). `profile`: service_id -> (state, type), for state windows."""
    est = estimates.frame(utility, size)
    if not len(est) or not len(df):   # nothing lost, or nothing kept to show it against
        return df.assign(estimated=0.0)
    if level == "state":
        est["service_id"] = est["service_id"].map(lambda s: profile.get(s, ("",))[0])
        est = est.groupby(["service_id", "window_start"], as_index=False)["estimated"].sum()
    est = est.rename(columns={"service_id": "key"})
    out = df.merge(est, on=["key", "window_start"], how="left")
    out["estimated"] = out["estimated"].fillna(0.0)
    return out
