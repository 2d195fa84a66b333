"""Each meter's quarter-hour still filling, in numpy arrays (a row per meter, see
meters.py): a live ledger hands its days whole quarters, so an open day changes (and is
written) once a quarter, and the windows of a batch that fall in a meter's filling quarter
are added without Python per window. Python runs once per quarter a meter finishes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from auth_kappa.insights.meters import MeterIndex, grown

QUARTER = 900


@dataclass
class Quarter:
    """A finished quarter, for its meter's day."""

    row: int
    date: str        # the meter's local date of the quarter
    period: int      # tariff period of its first window
    use: float
    last: int        # its newest window start


class QuarterBuffer:
    def __init__(self, meters: MeterIndex) -> None:
        self.meters = meters
        self.start = np.zeros(0, np.int64)    # the quarter filling; -1: none
        self.date = np.zeros(0, object)
        self.period = np.zeros(0, np.int64)
        self.use = np.zeros(0)
        self.last = np.zeros(0, np.int64)     # newest window start taken in (a window held
        self.part = np.zeros(0, np.int64)     # again adds nothing); its source partition

    def add(self, rows: np.ndarray, dates: np.ndarray, starts: np.ndarray,
            periods: np.ndarray, values: np.ndarray, parts: np.ndarray,
            accepts: Callable[[int, str, int], bool]) -> list[Quarter]:
        """Final windows (any order) into their meters' quarters; returns the quarters a
        later one finished, oldest first per meter. `accepts(row, date, start)`: whether a
        meter with no quarter filling still wants a window (its day may hold it already)."""
        self._fit()
        order = np.lexsort((starts, rows))
        rows, dates, starts = rows[order], dates[order], starts[order]
        periods, values, parts = periods[order], values[order], parts[order]
        fresh = starts > self.last[rows]
        rows, dates, starts = rows[fresh], dates[fresh], starts[fresh]
        periods, values, parts = periods[fresh], values[fresh], parts[fresh]
        if not len(rows):
            return []
        q = starts - starts % QUARTER
        head = np.flatnonzero(np.r_[True, (rows[1:] != rows[:-1]) | (q[1:] != q[:-1])])
        tail = np.r_[head[1:] - 1, len(rows) - 1]
        use = np.add.reduceat(values, head)
        srow = rows[head]
        same = q[head] == self.start[srow]              # the meter's filling quarter
        r = srow[same]
        self.use[r] += use[same]
        self.last[r], self.part[r] = starts[tail[same]], parts[tail[same]]
        out = []
        for i in np.flatnonzero(~same).tolist():
            row, lo, hi = int(srow[i]), int(head[i]), int(tail[i])
            if self.start[row] >= 0:
                if q[lo] < self.start[row]:
                    continue                            # a quarter already handed over
                out.append(self.take(row))
            else:                   # nothing filling: its day says from which window on
                lo = next((j for j in range(lo, hi + 1)
                           if accepts(row, dates[j], int(starts[j]))), hi + 1)
                if lo > hi:
                    continue
            self.start[row], self.date[row], self.period[row] = q[lo], dates[lo], periods[lo]
            self.use[row] = values[lo:hi + 1].sum()
            self.last[row], self.part[row] = starts[hi], parts[hi]
        return out

    def take(self, row: int) -> Quarter:
        self.start[row] = -1
        return Quarter(row, self.date[row], int(self.period[row]), float(self.use[row]),
                       int(self.last[row]))

    def finished(self, upto: dict[int, float], most: int | None = None) -> list[Quarter]:
        """Quarters over in their partition (its windows final up to upto[partition]),
        at most `most` of them (the oldest first)."""
        until = np.full(len(self.start), -np.inf)
        for p, u in upto.items():
            until[self.part == p] = u
        done = np.flatnonzero((self.start >= 0) & (self.start + QUARTER <= until))
        if most is not None and len(done) > most:
            done = done[np.argsort(self.start[done], kind="stable")[:most]]
        return [self.take(row) for row in done.tolist()]

    def take_all(self) -> list[Quarter]:
        return [self.take(row) for row in np.flatnonzero(self.start >= 0).tolist()]

    def forget(self, partitions: set[int]) -> None:
        gone = np.isin(self.part, list(partitions))
        self.start[gone], self.last[gone] = -1, -1

    def _fit(self) -> None:
        n = len(self.meters)
        self.start, self.last = grown(self.start, n, -1), grown(self.last, n, -1)
        self.date, self.period = grown(self.date, n, ""), grown(self.period, n, 0)
        self.use, self.part = grown(self.use, n, 0.0), grown(self.part, n, -1)
