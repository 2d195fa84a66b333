"""An alert: one anomaly of one meter, open until its end is known."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

COLUMNS = ["kind", "utility", "service_id", "start", "end", "value", "detail"]


@dataclass
class Alert:
    kind: str                 # "gap", "leak"
    utility: str
    service_id: str
    start: float              # event time, epoch seconds
    end: float | None         # None while open
    value: float              # gap: readings missing; leak: lowest hourly flow in it
    detail: str               # the rule's numbers, in words
    estimated: float | None = None   # a closed gap: the use estimated for it (not measured)

    @property
    def is_open(self) -> bool:
        return self.end is None


def alerts_frame(alerts: list[Alert]) -> pd.DataFrame:
    """The public frame: start and end as UTC timestamps (end NaT while open)."""
    df = pd.DataFrame([asdict(a) for a in alerts], columns=COLUMNS)
    for col in ("start", "end"):
        df[col] = pd.to_datetime(df[col].astype("float64"), unit="s", utc=True).astype(
            "datetime64[ns, UTC]")
    df["value"] = df["value"].astype("float64")
    return df.sort_values(["start", "kind", "service_id"], kind="stable").reset_index(drop=True)
