"""Event-time tumbling windows: start = floor(end_ts / size) * size, in UTC epoch seconds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from auth_kappa.errors import UserError
from auth_kappa.units import parse_duration


@dataclass(frozen=True, order=True)
class WindowSpec:
    """One tumbling window length, with how long its values are kept (event time).

    Per-state windows are cheap (51 keys per utility) and kept long; per-meter windows
    cost memory for every meter, so they get their own, shorter retention.
    """

    size: int
    retention: int
    meter_retention: int = 0

    def __post_init__(self) -> None:
        if self.size <= 0:
            raise UserError(f"window size must be positive, got {self.size}s")
        if not self.meter_retention:
            object.__setattr__(self, "meter_retention",
                               min(self.retention, default_meter_retention(self.size)))

    def keep(self, level: str) -> int:
        return self.meter_retention if level == "meter" else self.retention

    def retention_cut(self, newest_start: int | np.ndarray, level: str) -> int | np.ndarray:
        """Retention rule, the same in Redis (lua/*.lua), the embedded store and replay:
        per stored key (a meter's windows; one utility's state windows), with N the newest
        window_start it holds, a window is kept iff window_start > N - retention. So the
        cut returned here, floor((N - retention) / size) * size, and every window at or
        before it are gone. Any retention works, a multiple of the size or not."""
        return (newest_start - self.keep(level)) // self.size * self.size

    @classmethod
    def parse(cls, size: str | int | float, retention: str | int | float | None = None,
              meter_retention: str | int | float | None = None) -> WindowSpec:
        s = int(parse_duration(size, name="window"))
        r = int(parse_duration(retention, name="retention")) if retention is not None else 0
        m = int(parse_duration(meter_retention, name="meter retention")) \
            if meter_retention is not None else 0
        return cls(s, r or default_retention(s), m)

    @property
    def label(self) -> str:
        for unit, sec in (("d", 86400), ("h", 3600), ("m", 60)):
            if self.size % sec == 0:
                return f"{self.size // sec}{unit}"
        return f"{self.size}s"

    def start(self, end_ts: np.ndarray) -> np.ndarray:
        """Window start for each event time; floor division keeps pre-1970 times right too."""
        return (np.asarray(end_ts, dtype=np.int64) // self.size) * self.size


def is_final(window_start: Any, size: int, grace: float, watermark: float) -> Any:
    """The one finality rule (scalars or arrays): a window takes no more readings once
    its end + grace is at or before the watermark. Topology.final_cut is its cut form."""
    return is_closed(window_start + size, grace, watermark)


def is_closed(end: Any, grace: float, watermark: float) -> Any:
    """is_final for anything that ends at `end` (a window, a closed alert): nothing more
    can change it once end + grace is at or before the watermark."""
    return end + grace <= watermark


def default_meter_retention(size: int) -> int:
    """Per meter: minute windows 2 h (the household chart), hourly 7 days, daily 400 days."""
    if size < 3600:
        return 2 * 3600
    if size < 86400:
        return 7 * 86400
    return 400 * 86400


def default_retention(size: int) -> int:
    """Per state: minute windows 48 h, hourly 90 days, longer 400 days."""
    if size < 3600:
        return 48 * 3600
    if size < 86400:
        return 90 * 86400
    return 400 * 86400
