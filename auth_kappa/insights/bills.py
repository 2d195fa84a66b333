"""Billing determinants per meter and local day: total, peak 15-minute demand, and
time-of-use totals priced by a tariff; a month's bill is its days added up.

Fed by final windows of the finest size (a divisor of 15 minutes). A day is the meter's
local day (its state's zone, auth_kappa/timezones.py): 23 to 25 hours around DST. Every
US zone is a whole number of hours from UTC, so quarter-hours are the same in UTC.

A meter's final windows arrive in time order, so a day is kept compact: its total, its
highest closed quarter, the quarter still filling, and one total per tariff period. Only
each meter's newest day is open; a live runtime persists it per source partition (like
gaps) and writes a day once it is over, and the embedded engine keeps every day.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field
from datetime import date as Date
from datetime import timedelta

import numpy as np
import pandas as pd

from auth_kappa.insights.meters import MeterIndex, grown
from auth_kappa.insights.quarters import QUARTER, Quarter, QuarterBuffer
from auth_kappa.insights.similar import SimilarHomes
from auth_kappa.insights.tariff import Tariff
from auth_kappa.timezones import local_hours, zone_of
from auth_kappa.topology.schema import METER_TYPES, STATES, UNITS
from auth_kappa.topology.window_table import Rows

HEAD = struct.Struct("<bbddqqdq")   # state, type, total, peak, its quarter, open quarter,
# its use so far, newest window start (a Day record after its 10-byte date)
ZONE_BY_CODE = np.array([*(zone_of(s) for s in STATES), "UTC"], object)  # code -1: last
DAYS_KEPT = 62       # a meter's past days in Redis: this month's bill and the last one's
SKETCH_DAYS = 3      # a live runtime's similar-homes sketches in memory: a day that ends
# later than this (a meter silent for days) is left out of its group's sketch
DAY_COLUMNS = ["day", "total", "peak_15min", "peak_start", "peak_kw", "unit"]
BILL_COLUMNS = ["utility", "period", "consumption", "unit", "price", "cost"]


@dataclass
class Day:
    date: str                      # the meter's local date, YYYY-MM-DD
    state: int = -1                # codes into STATES and METER_TYPES (-1: not known)
    mtype: int = -1
    total: float = 0.0
    peak: float = -np.inf          # the highest quarter closed so far, and its start
    peak_q: int = 0
    open_q: int = -1               # the quarter still filling, and its use so far
    open_sum: float = 0.0
    last: int = -1                 # the newest window start added (a window held again
    tou: list[float] = field(default_factory=list)   # adds nothing); per tariff period

    def add(self, start: int, period: int, value: float) -> None:
        if start <= self.last:
            return
        self.last = start
        q = start // QUARTER * QUARTER
        if q != self.open_q:
            self._close_quarter()
            self.open_q, self.open_sum = q, 0.0
        self.open_sum += value
        self.total += value
        if period >= len(self.tou):
            self.tou += [0.0] * (period + 1 - len(self.tou))
        self.tou[period] += value

    def _close_quarter(self) -> None:
        if self.open_q >= 0 and self.open_sum > self.peak:   # ties: the earliest quarter
            self.peak, self.peak_q = self.open_sum, self.open_q

    def peak_now(self) -> tuple[float, int]:
        """The day's highest quarter, counting the one still filling."""
        if self.open_q >= 0 and self.open_sum > self.peak:
            return self.open_sum, self.open_q
        return self.peak, self.peak_q

    @property
    def profile(self) -> tuple[str, str]:
        return (STATES[self.state] if self.state >= 0 else "",
                METER_TYPES[self.mtype] if self.mtype >= 0 else "")

    def encode(self) -> bytes:
        """Binary (a checkpoint writes every changed meter's open day): the date, then
        HEAD's fixed fields, then one float64 per tariff period."""
        return self.date.encode() + HEAD.pack(
            self.state, self.mtype, self.total, self.peak, self.peak_q, self.open_q,
            self.open_sum, self.last) + struct.pack(f"<{len(self.tou)}d", *self.tou)

    @classmethod
    def decode(cls, raw: bytes) -> Day:
        state, mtype, total, peak, peak_q, open_q, open_sum, last = HEAD.unpack_from(raw, 10)
        tou = raw[10 + HEAD.size:]
        return cls(raw[:10].decode(), state, mtype, total, peak, peak_q, open_q, open_sum,
                   last, list(struct.unpack(f"<{len(tou) // 8}d", tou)))


_UNSAID = np.zeros((0, 3), np.int64)   # DailyLedger._said before anything is written
_UNSAID.setflags(write=False)


TAKE_PER_STEP = 1024   # finished quarters a ledger takes into their days per step, at most
TAKE_RATE = 8_000.0    # and a second: a quarter's turn (25k meters) over ~3 s, not ~0.5


@dataclass
class DailyLedger:
    """`keep`: every day stays in memory (the embedded engine); else only open days, and
    the closed ones wait in `closed` for the next checkpoint (a live runtime)."""

    utility: str
    tariff: Tariff
    keep: bool = True
    meters: MeterIndex = field(default_factory=MeterIndex)   # shared by a stage's parts
    open: dict[str, Day] = field(default_factory=dict)              # sid -> newest day
    kept: dict[tuple[str, str], Day] = field(default_factory=dict)  # (sid, date), keep
    closed: list[tuple[str, Day]] = field(default_factory=list)     # not persisted yet
    part: dict[str, int] = field(default_factory=dict)              # sid -> partition
    dirty: set[str] = field(default_factory=set)   # open day changed (live: not keep)
    # similar homes, per source partition (a live runtime persists each in its checkpoint)
    similar: dict[int, SimilarHomes] = field(default_factory=dict)
    dirty_groups: set[tuple[int, tuple[str, str, str, str]]] = field(default_factory=set)
    newest: str = ""                                                # newest local date
    _types: dict[str, tuple[int, int]] = field(default_factory=dict)  # sid -> state, type
    _cut: dict[int, int] = field(default_factory=dict)     # partition -> quarters flushed
    _behind: bool = False   # quarters over and not taken yet (advance takes them in steps)
    _budget: float = TAKE_PER_STEP   # quarters advance may take now (TAKE_RATE refills it)
    _clock: float = field(default_factory=time.monotonic)
    # meter row -> (state, type, partition) last written to _types and part (-2: none);
    # emptied when restore or forget change those dicts behind it
    _said: np.ndarray = field(default_factory=lambda: _UNSAID)

    def __post_init__(self) -> None:
        # a live runtime's quarter still filling, per meter; a day takes it when the
        # quarter is over (advance), so an open day changes once a quarter, not a minute
        self.quarters = QuarterBuffer(self.meters)

    def observe(self, final: Rows) -> None:
        if not len(final):
            return
        rows = self.meters.rows(final.k0, final.k1)
        sids = self.meters.text[rows]
        n = len(final)
        codes = final.state if final.state is not None else np.full(n, -1)
        types = final.mtype if final.mtype is not None else np.full(n, -1)
        part = final.part if final.part is not None else np.full(n, -1)
        zones = ZONE_BY_CODE[codes]
        for i in np.flatnonzero(codes < 0):   # not read here: the zone its day knows
            zones[i] = self._zone(sids[i])
        starts = final.window_start
        date, hour, weekday = local_hours(starts, zones)
        period = self.tariff.period_of(self.utility, weekday, hour)
        period[period < 0] = len(self.tariff.periods.get(self.utility, ()))  # unpriced
        order = np.argsort(starts, kind="stable")
        sids, codes, types, part = sids[order], codes[order], types[order], part[order]
        told = self._told(rows[order], codes, types, part)
        known = (codes >= 0) & told
        profile = dict(zip(sids[known].tolist(), zip(
            codes[known].tolist(), types[known].tolist(), strict=True), strict=True))
        self._types.update(profile)
        mine = (part >= 0) & told   # before any day closes: its sketch is its partition's
        self.part.update(zip(sids[mine].tolist(), part[mine].tolist(), strict=True))
        if not self.keep:
            for quarter in self.quarters.add(rows[order], date[order], starts[order],
                                             period[order], final.sum[order], part,
                                             self._accepts):
                self._take(quarter)
            return
        opened = self.open
        for sid, d, s, p, v in zip(sids.tolist(), date[order].tolist(), starts[order].tolist(),
                                   period[order].tolist(), final.sum[order].tolist(),
                                   strict=True):
            day = opened.get(sid)
            if day is None or d > day.date:
                if day is not None:
                    self._close(sid, day)   # a later local day began: that one is whole
                day = opened[sid] = Day(d, *self._types.get(sid, (-1, -1)))
                self.newest = max(self.newest, d)
            elif d < day.date or s <= day.last:
                continue                    # a window of a day already over, or held again
            day.add(s, p, v)
        for sid, (c, t) in profile.items():
            day = opened.get(sid)
            if day is not None:
                day.state, day.mtype = c, t

    def _told(self, rows: np.ndarray, codes: np.ndarray, types: np.ndarray,
              part: np.ndarray) -> np.ndarray:
        """The windows whose meter's (state, type, partition) the dicts may not hold yet:
        every window of a meter with one that differs from what was last written. A
        minute's finalization then costs no dict update per meter (they rarely change)."""
        said = np.stack([codes, types, part], axis=1).astype(np.int64)
        self._said = grown(self._said, len(self.meters), -2)
        differ = (self._said[rows] != said).any(axis=1)
        if not differ.any():
            return differ
        told = np.isin(rows, rows[differ])
        # each meter's last window (by start) is what the dicts end with
        at = np.flatnonzero(told)[::-1]
        _, last = np.unique(rows[at], return_index=True)
        self._said[rows[at[last]]] = said[at[last]]
        return told

    def _accepts(self, row: int, date: str, start: int) -> bool:
        """A window for a meter with no quarter filling: not if its day holds it."""
        day = self.open.get(self.meters.text[row])
        return day is None or date > day.date or (date == day.date and start > day.last)

    def _take(self, quarter: Quarter) -> None:
        """A quarter that is over goes into its day (a later day closes the earlier)."""
        sid, d = self.meters.text[quarter.row], quarter.date
        day = self.open.get(sid)
        if day is None or d > day.date:
            if day is not None:
                self._close(sid, day)
            day = self.open[sid] = Day(d)
            self.newest = max(self.newest, d)
        if d == day.date:   # else a quarter of a day already over: the day stays as it is
            if sid in self._types:
                day.state, day.mtype = self._types[sid]
            day.add(quarter.last, quarter.period, quarter.use)
            self.dirty.add(sid)
        self.quarters.told(quarter.row, day.date, day.last)

    def advance(self, upto: dict[int, float]) -> None:
        """Quarters over in their partition (final up to `upto`) go into their days:
        scanned once a quarter per partition, and taken at most TAKE_PER_STEP a call and
        TAKE_RATE a second. A quarter's turn finishes every meter's quarter at once
        (~10 us of Python each, and its day's record in the next checkpoint): taken whole,
        it held the worker's loop for seconds on a large fleet, and the new minute's
        readings behind it; 1,024 a step still made the checkpoints of a 2x stream 1.5 s
        apart for a second. One over and not taken yet is like one still filling: a later
        window of its meter takes it first, and after a restart the store's final windows
        rebuild it (Insights.learn_finest)."""
        moved = {p: (int(u // QUARTER) if np.isfinite(u) else -2) for p, u in upto.items()
                 if np.isfinite(u) and u // QUARTER > self._cut.get(p, -1)
                 or u == np.inf and self._cut.get(p) != -2}   # -2: all, the input is over
        if not moved and not self._behind:
            return
        self._cut.update(moved)
        ended = any(u == np.inf for u in upto.values())   # no later step: all of them
        now = time.monotonic()
        self._budget = min(TAKE_PER_STEP, self._budget + (now - self._clock) * TAKE_RATE)
        self._clock = now
        limit = None if ended else int(self._budget)
        if limit == 0:   # nothing this step (a scan of every meter costs ~2 ms)
            self._behind = True
            return
        quarters = self.quarters.finished(upto, limit)
        self._budget -= len(quarters)
        self._behind = len(quarters) == limit
        for quarter in quarters:
            self._take(quarter)

    def _zone(self, sid: str) -> str:
        day = self.open.get(sid)
        return zone_of(STATES[day.state]) if day is not None and day.state >= 0 else "UTC"

    def _close(self, sid: str, day: Day) -> None:
        state, kind = day.profile
        p = self.part.get(sid, -1)
        group = (self.utility, state, kind, day.date)
        if self.keep or day.date >= self.horizon():
            self.similar_of(p).add(group, day.total)
            self.dirty_groups.add((p, group))
        if self.keep:
            self.kept[(sid, day.date)] = day
        else:
            self.closed.append((sid, day))

    def end_of_input(self) -> None:
        """Every meter's newest day is as whole as it will get."""
        for quarter in self.quarters.take_all():
            self._take(quarter)
        for sid, day in self.open.items():
            self._close(sid, day)
        self.open = {}
        self.quarters.untold()

    def similar_of(self, partition: int) -> SimilarHomes:
        return self.similar.setdefault(partition, SimilarHomes())

    def horizon(self) -> str:
        return sketch_dates(self.newest)[0] if self.newest else ""

    def prune(self) -> None:
        """A live runtime's memory: sketches of days past the horizon go (Redis has them)."""
        if self.keep:
            return
        horizon = self.horizon()
        for homes in self.similar.values():
            for group in [g for g in homes.sketches if g[3] < horizon]:
                del homes.sketches[group]

    def restore(self, sid: str, day: Day, partition: int) -> None:
        self.open[sid], self.part[sid] = day, partition
        self._said = _UNSAID
        row = self.meters.find(sid)
        if row is not None:   # else its row comes with its windows, and no word with it
            self.quarters.told(row, day.date, day.last)
        self.newest = max(self.newest, day.date)

    def forget(self, partitions: set[int]) -> None:
        self._said = _UNSAID
        for sid in [s for s, p in self.part.items() if p in partitions]:
            for table in (self.open, self.part, self._types):
                table.pop(sid, None)
            self.dirty.discard(sid)
            row = self.meters.find(sid)
            if row is not None:
                self.quarters.told(row, "", -1)
        self.quarters.forget(partitions)
        for p in partitions:
            self._cut.pop(p, None)
        for p in partitions:
            self.similar.pop(p, None)
        self.dirty_groups = {g for g in self.dirty_groups if g[0] not in partitions}

    # ---- reads (embedded)
    @property
    def profiles(self) -> dict[str, tuple[str, str]]:
        """service_id -> (state, meter type), as its readings said."""
        out = {s: d.profile for (s, _), d in self.kept.items() if d.state >= 0}
        out.update((s, d.profile) for s, d in self.open.items() if d.state >= 0)
        return out

    def days_of(self, service_id: str) -> list[Day]:
        days = [d for (s, _), d in self.kept.items() if s == service_id]
        if service_id in self.open:
            days.append(self.open[service_id])
        return sorted(days, key=lambda d: d.date)

    def standing(self, service_id: str, date: str) -> dict | None:
        """The meter's day among similar homes (same utility, state and type)."""
        day = self.kept.get((service_id, date))
        if day is None:
            return None   # no such day, or not over yet
        merged = SimilarHomes()
        for homes in self.similar.values():
            merged.merge_all(homes)
        return standing(self.utility, merged, day)


def sketch_dates(newest: str) -> list[str]:
    """The local dates whose sketches a live runtime holds, oldest first."""
    last = Date.fromisoformat(newest)
    return [(last - timedelta(days=k)).isoformat() for k in range(SKETCH_DAYS, -1, -1)]


def expired(date: str) -> str:
    """The date that leaves the store when `date` is written (DAYS_KEPT before it)."""
    return (Date.fromisoformat(date) - timedelta(days=DAYS_KEPT)).isoformat()


def days_from(records: list[bytes]) -> list[Day]:
    """Stored day records (past days, then the open one) as days, oldest first."""
    by_date = {d.date: d for d in map(Day.decode, records)}
    return [by_date[k] for k in sorted(by_date)]


def similar_from(utility: str, day: Day, shares: list[bytes]) -> dict | None:
    """A day's standing among similar homes, from every partition's sketch of its group."""
    state, kind = day.profile
    homes = SimilarHomes()
    for raw in shares:
        homes.merge((utility, state, kind, day.date), raw)
    return standing(utility, homes, day)


def standing(utility: str, similar: SimilarHomes, day: Day) -> dict | None:
    state, kind = day.profile
    found = similar.standing((utility, state, kind, day.date), day.total)
    return found and {"utility": utility, "day": day.date, "state": state, "type": kind,
                      "total": day.total, **found}


def days_frame(utility: str, days: list[Day]) -> pd.DataFrame:
    """day (local date), total, peak_15min and its start (UTC), peak_kw (electricity: the
    peak quarter's average power), unit."""
    rows = []
    for day in days:
        peak, q = day.peak_now()
        rows.append((day.date, day.total, peak, pd.Timestamp(q, unit="s", tz="UTC"),
                     peak * 4 if utility == "electricity" else np.nan))
    df = pd.DataFrame(rows, columns=DAY_COLUMNS[:-1])
    df["unit"] = UNITS[utility]
    return df


def bill_frame(utility: str, tariff: Tariff, days: list[Day]) -> pd.DataFrame:
    """A month's days, per tariff period: consumption in the utility's unit (prices are
    per that unit), price, cost."""
    periods = tariff.periods.get(utility, ())
    use = np.zeros(len(periods) + 1)     # the last: hours no period covers
    for day in days:
        for p, v in enumerate(day.tou[:len(use)]):
            use[p] += v
    unit = UNITS[utility]
    rows = [(utility, p.name, use[i], unit, p.price, use[i] * p.price)
            for i, p in enumerate(periods)]
    if use[-1]:
        rows.append((utility, "unpriced", use[-1], unit, np.nan, np.nan))
    return pd.DataFrame(rows, columns=BILL_COLUMNS)
