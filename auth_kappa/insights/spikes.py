"""Spikes (electricity, gas): an hour far above the meter's own usual for that hour.

Baseline: the same hour of the day on the meter's previous `days` days of the same kind
(weekdays, or weekend days, in the meter's local zone: homes wake later at weekends),
from final hourly windows; an hour without readings does not count. An hour is a spike
when it has at least `min_days` such values and its total exceeds both median + k x MAD
(MAD scaled by 1.4826, so k is in standard deviations) and `ratio` x the median: robust
to the odd busy evening, and a flat meter (MAD 0) still needs a real jump. A live worker
rebuilds the history from the hourly windows Redis keeps (7 days) when it gets a
partition, so a weekend hour may wait for a weekend in memory before it can alert.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from auth_kappa.insights.alerts import Alert
from auth_kappa.timezones import tzinfo, zone_of
from auth_kappa.topology.keys import uuid_text
from auth_kappa.topology.schema import STATES
from auth_kappa.topology.window_table import Rows

HOUR, DAY = 3600, 86400
MAD_SCALE = 1.4826


@dataclass
class SpikeDetector:
    utility: str
    days: int = 14
    min_days: int = 3
    k: float = 6.0
    ratio: float = 3.0
    # service_id -> ring of the last `days` x 24 hourly totals, and the hour each holds
    values: dict[str, np.ndarray] = field(default_factory=dict)
    hours: dict[str, np.ndarray] = field(default_factory=dict)
    part: dict[str, int] = field(default_factory=dict)
    zone: dict[str, str] = field(default_factory=dict)    # sid -> IANA zone (its state)

    def partition_of(self, sid: str) -> int | None:
        return self.part.get(sid)

    def observe(self, final: Rows, alert: bool = True) -> list[Alert]:
        """Final hourly windows, oldest first per meter; `alert=False` only learns them
        (a history rebuilt from the store)."""
        if not len(final):
            return []
        sids = uuid_text(final.k0, final.k1).tolist()
        parts = final.part if final.part is not None else np.full(len(final), -1)
        if final.state is not None:
            for sid, code in zip(sids, final.state.tolist(), strict=True):
                if code >= 0:
                    self.zone[sid] = zone_of(STATES[code])
        out = []
        for i in np.lexsort((final.window_start, final.k1, final.k0)):
            sid, start, total = sids[i], int(final.window_start[i]), float(final.sum[i])
            if alert:
                found = self._check(sid, start, total)
                if found is not None:
                    out.append(found)
            self._learn(sid, start, total, int(parts[i]))
        return out

    def _ring(self, sid: str) -> tuple[np.ndarray, np.ndarray]:
        if sid not in self.values:
            self.values[sid] = np.zeros(self.days * 24, np.float64)
            self.hours[sid] = np.full(self.days * 24, -1, np.int64)
        return self.values[sid], self.hours[sid]

    def _learn(self, sid: str, start: int, total: float, partition: int) -> None:
        values, hours = self._ring(sid)
        slot = (start // HOUR) % len(values)
        if hours[slot] < start // HOUR:
            values[slot], hours[slot] = total, start // HOUR
        self.part[sid] = partition

    def baseline(self, sid: str, start: int) -> np.ndarray:
        """The same hour on each of the previous `days` days of the same kind (weekday or
        weekend, local) that had readings."""
        if sid not in self.values:
            return np.zeros(0)
        values, hours = self.values[sid], self.hours[sid]
        want = start // HOUR - 24 * np.arange(1, self.days + 1)
        zone = tzinfo(self.zone.get(sid, "UTC"))
        weekend = dt.datetime.fromtimestamp(start, zone).weekday() >= 5
        same = np.array([(dt.datetime.fromtimestamp(int(h) * HOUR, zone).weekday() >= 5)
                         == weekend for h in want])
        slots = want % len(values)
        return values[slots[(hours[slots] == want) & same]]

    def hour_total(self, sid: str, start: int) -> float:
        """The meter's total in the hour starting at `start`, if the ring still holds it."""
        if sid not in self.values:
            return np.nan
        slot = (start // HOUR) % len(self.values[sid])
        return float(self.values[sid][slot]) if self.hours[sid][slot] == start // HOUR \
            else np.nan

    def _check(self, sid: str, start: int, total: float) -> Alert | None:
        base = self.baseline(sid, start)
        if len(base) < self.min_days:
            return None
        median = float(np.median(base))
        mad = MAD_SCALE * float(np.median(np.abs(base - median)))
        limit = max(median + self.k * mad, self.ratio * median)
        if total <= limit or total <= 0:
            return None
        return Alert("spike", self.utility, sid, float(start), float(start + HOUR), total,
                     f"{total:.3f} in the hour against a usual {median:.3f} (same hour, "
                     f"{len(base)} previous days of its kind; limit {limit:.3f})")

    def forget(self, partitions: set[int]) -> None:
        for sid in [s for s, p in self.part.items() if p in partitions]:
            for table in (self.values, self.hours, self.part, self.zone):
                table.pop(sid, None)
