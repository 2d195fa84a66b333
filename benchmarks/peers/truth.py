"""Brute-force 1-minute windows per meter, and the check of a peer's windows against them.

The peers compute what the Quix baseline computes: per utility and meter, the count and
sum of the readings whose end_ts falls in each 1-minute tumbling window. The truth comes
from the simulator's own generator (same spec as the topics), not from any engine.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

UTILITIES = ("electricity", "gas", "water")
WINDOW_S = 60
KEY = ["service_id", "start"]


def expected_windows(meters: int, duration: float) -> dict[str, pd.DataFrame]:
    """utility -> (service_id, start, count, sum), one row per window with readings."""
    from simulators import SimSpec, iter_reading_batches, make_registry

    spec = SimSpec(meters=meters, duration=duration, seed=0)
    parts: dict[str, list[pd.DataFrame]] = {u: [] for u in UTILITIES}
    for utility, batch in iter_reading_batches(spec, make_registry(spec)):
        end = batch.column("end_ts").to_numpy()
        parts[utility].append(pd.DataFrame({
            "service_id": batch.column("service_id").to_numpy(zero_copy_only=False),
            "start": end - end % WINDOW_S,
            "consumption": batch.column("consumption").to_numpy()}))
    return {u: windows(pd.concat(parts[u], ignore_index=True)) for u in UTILITIES}


def windows(readings: pd.DataFrame) -> pd.DataFrame:
    """Group readings (service_id, start, consumption) into count and sum per window."""
    out = readings.groupby(KEY, sort=True)["consumption"].agg(["count", "sum"]).reset_index()
    out["count"] = out["count"].astype(np.int64)
    return out


def compare(got: dict[str, pd.DataFrame], truth: dict[str, pd.DataFrame],
            frontier: str = "") -> tuple[str, int]:
    """("ok" or "WRONG: ...", readings in the peer's windows).

    Every window must match the brute force exactly (count, and sum to 1e-9 relative).
    frontier="": the peer must have emitted every window. frontier="utility" (a watermark
    per stream that moves only with new data, so the newest windows stay open): per
    utility, every window up to the newest one emitted, and no other. frontier="meter"
    (a clock per key): per meter, every window up to that meter's newest emitted one.
    """
    problems, covered = [], 0
    for u in UTILITIES:
        want = truth[u]
        have = got.get(u, pd.DataFrame(columns=[*KEY, "count", "sum"]))
        covered += int(have["count"].sum())
        if frontier == "utility":
            newest = have["start"].max() if len(have) else -1
            want = want[want["start"] <= newest]
        elif frontier == "meter":
            newest = have.groupby("service_id")["start"].max()
            limit = want["service_id"].map(newest).fillna(-1)
            want = want[want["start"] <= limit]
        if have.duplicated(KEY).any():
            problems.append(f"{u}: {int(have.duplicated(KEY).sum())} windows emitted twice")
            continue
        both = want.merge(have, on=KEY, how="outer", suffixes=("", "_got"), indicator=True)
        missing = int((both["_merge"] == "left_only").sum())
        extra = int((both["_merge"] == "right_only").sum())
        common = both[both["_merge"] == "both"]
        bad_count = int((common["count"] != common["count_got"]).sum())
        tol = 1e-9 * np.maximum(1.0, common["sum"].abs())
        bad_sum = int(((common["sum"] - common["sum_got"]).abs() > tol).sum())
        if missing or extra or bad_count or bad_sum:
            problems.append(f"{u}: {missing} windows missing, {extra} unexpected, "
                            f"{bad_count} wrong counts, {bad_sum} wrong sums "
                            f"(of {len(want):,})")
    return ("WRONG: " + "; ".join(problems) if problems else "ok"), covered
