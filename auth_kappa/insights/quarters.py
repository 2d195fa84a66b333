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
        # the meter's open day as its ledger last told (date "": not told): a meter with no
        # quarter filling takes a window its day does not hold without a call to `accepts`
        self.day_date = np.zeros(0, object)
        self.day_last = np.zeros(0, np.int64)

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
        begin = self._begin(srow, head, tail, same, q, dates, starts, periods, use, parts)
        for i in np.flatnonzero(~same & ~begin).tolist():
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

    def _begin(self, srow: np.ndarray, head: np.ndarray, tail: np.ndarray, same: np.ndarray,
               q: np.ndarray, dates: np.ndarray, starts: np.ndarray, periods: np.ndarray,
               use: np.ndarray, parts: np.ndarray) -> np.ndarray:
        """Quarters begun at once, columnar: the batch's only group of a meter with nothing
        filling, whose day (as told) does not hold its first window. After a quarter's
        turn that is every meter, and a call to `accepts` each cost ~6 us (a minute's
        finalization of 75,000 meters held the worker's loop for 0.5 s under load).
        Returns which groups were begun; the caller decides the rest one by one."""
        begun = np.zeros(len(srow), bool)
        idle = ~same & (self.start[srow] < 0)   # a steady minute: none (all are filling)
        if not idle.any():
            return begun
        # srow is in meter order: a meter's only group differs from both neighbours
        single = np.r_[True, srow[1:] != srow[:-1]] & np.r_[srow[:-1] != srow[1:], True]
        cand = np.flatnonzero(idle & single & (self.day_date[srow] != ""))
        lo, r = head[cand], srow[cand]
        d, held_date = dates[lo], self.day_date[r]
        later = (d > held_date) | ((d == held_date) & (starts[lo] > self.day_last[r]))
        cand, lo, r = cand[later], lo[later], r[later]
        hi = tail[cand]
        self.start[r], self.date[r], self.period[r] = q[lo], dates[lo], periods[lo]
        self.use[r], self.last[r], self.part[r] = use[cand], starts[hi], parts[hi]
        begun[cand] = True
        return begun

    def told(self, row: int, date: str, last: int) -> None:
        """The ledger's word on what the meter's open day holds (date "": no word)."""
        if row >= len(self.day_date):   # a restored day's meter, new to the index
            self._fit()
        self.day_date[row], self.day_last[row] = date, last

    def untold(self) -> None:
        """No word on any meter's day (its ledger closed them all)."""
        self.day_date[:] = ""

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
        self.day_date[gone] = ""

    def _fit(self) -> None:
        n = len(self.meters)
        self.start, self.last = grown(self.start, n, -1), grown(self.last, n, -1)
        self.date, self.period = grown(self.date, n, ""), grown(self.period, n, 0)
        self.use, self.part = grown(self.use, n, 0.0), grown(self.part, n, -1)
        self.day_date, self.day_last = grown(self.day_date, n, ""), grown(self.day_last, n, -1)
