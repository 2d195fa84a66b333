"""Event-time tumbling windows: start = floor(end_ts / size) * size, in UTC epoch seconds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from auth_kappa.config import parse_duration
from auth_kappa.errors import UserError


@dataclass(frozen=True, order=True)
class WindowSpec:
    """One tumbling window length, with how long its values are kept (event time)."""

    size: int
    retention: int

    def __post_init__(self) -> None:
        if self.size <= 0:
            raise UserError(f"window size must be positive, got {self.size}s")

    @classmethod
    def parse(cls, size: str | int | float, retention: str | int | float | None = None) -> WindowSpec:
        s = int(parse_duration(size, name="window"))
        r = int(parse_duration(retention, name="retention")) if retention is not None else 0
        return cls(s, r or default_retention(s))

    @property
    def label(self) -> str:
        for unit, sec in (("d", 86400), ("h", 3600), ("m", 60)):
            if self.size % sec == 0:
                return f"{self.size // sec}{unit}"
        return f"{self.size}s"

    def start(self, end_ts: np.ndarray) -> np.ndarray:
        """Window start for each event time; floor division keeps pre-1970 times right too."""
        return (np.asarray(end_ts, dtype=np.int64) // self.size) * self.size


def default_retention(size: int) -> int:
    """Tiered defaults: minute windows 48 h, hourly 90 days, longer 400 days."""
    if size < 3600:
        return 48 * 3600
    if size < 86400:
        return 90 * 86400
    return 400 * 86400
