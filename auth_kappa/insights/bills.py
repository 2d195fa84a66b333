"""Billing determinants per meter and local day: total, peak 15-minute demand, and
time-of-use totals priced by a tariff; a month's bill is its days added up.

Fed by final windows of the finest size (a divisor of 15 minutes). A day is the meter's
local day (its state's zone, auth_kappa/timezones.py): 23 to 25 hours around DST. Every
US zone is a whole number of hours from UTC, so quarter-hours are the same in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from auth_kappa.insights.similar import SimilarHomes
from auth_kappa.insights.tariff import PRICED_UNIT, UNIT_SCALE, Tariff
from auth_kappa.timezones import zone_of
from auth_kappa.topology.keys import uuid_text
from auth_kappa.topology.schema import METER_TYPES, STATES
from auth_kappa.topology.window_table import Rows

QUARTER = 900


@dataclass
class Day:
    total: float = 0.0
    quarters: dict[int, float] = field(default_factory=dict)   # quarter start -> use
    tou: dict[int, float] = field(default_factory=dict)        # tariff period -> use


@dataclass
class DailyLedger:
    utility: str
    tariff: Tariff
    similar: SimilarHomes = field(default_factory=SimilarHomes)
    days: dict[tuple[str, str], Day] = field(default_factory=dict)   # (sid, local date)
    zone: dict[str, str] = field(default_factory=dict)               # sid -> IANA zone
    profile: dict[str, tuple[str, str]] = field(default_factory=dict)  # sid -> state, type
    current: dict[str, str] = field(default_factory=dict)  # sid -> its newest local day

    def observe(self, final: Rows) -> None:
        if not len(final):
            return
        sids = uuid_text(final.k0, final.k1).tolist()
        codes = final.state if final.state is not None else np.full(len(final), -1)
        types = final.mtype if final.mtype is not None else np.full(len(final), -1)
        for sid, code, kind in zip(sids, codes.tolist(), types.tolist(), strict=True):
            if code >= 0:
                self.zone[sid] = zone_of(STATES[code])
                self.profile[sid] = (STATES[code], METER_TYPES[kind])
        zones = np.array([self.zone.get(s, "UTC") for s in sids])
        starts = final.window_start
        date = np.empty(len(final), object)
        hour, weekday = np.empty(len(final), np.int64), np.empty(len(final), np.int64)
        for z in np.unique(zones):
            pick = zones == z
            local = pd.to_datetime(starts[pick], unit="s", utc=True).tz_convert(z)
            date[pick] = local.strftime("%Y-%m-%d")
            hour[pick], weekday[pick] = local.hour, local.day_of_week
        period = self.tariff.period_of(self.utility, weekday, hour)
        quarter = starts // QUARTER * QUARTER
        order = np.argsort(starts, kind="stable")
        for sid, d, q, p, v in zip(np.array(sids, object)[order].tolist(),
                                   date[order].tolist(), quarter[order].tolist(),
                                   period[order].tolist(), final.sum[order].tolist(),
                                   strict=True):
            before = self.current.get(sid)
            if before is not None and d > before:
                self._close(sid, before)    # a later local day began: that one is whole
            if before is None or d > before:
                self.current[sid] = d
            day = self.days.setdefault((sid, d), Day())
            day.total += v
            day.quarters[q] = day.quarters.get(q, 0.0) + v
            day.tou[p] = day.tou.get(p, 0.0) + v

    def _close(self, sid: str, date: str) -> None:
        state, kind = self.profile.get(sid, ("", ""))
        self.similar.add((self.utility, state, kind, date), self.days[(sid, date)].total)

    def end_of_input(self) -> None:
        """Every meter's newest day is as whole as it will get."""
        for sid, d in self.current.items():
            self._close(sid, d)
        self.current = {}

    def standing(self, service_id: str, date: str) -> dict | None:
        """The meter's day among similar homes (same utility, state and type)."""
        day = self.days.get((service_id, date))
        if day is None or service_id in self.current and self.current[service_id] == date:
            return None   # no such day, or not over yet
        state, kind = self.profile.get(service_id, ("", ""))
        found = self.similar.standing((self.utility, state, kind, date), day.total)
        return found and {"utility": self.utility, "day": date, "state": state,
                          "type": kind, "total": day.total, **found}

    def daily(self, service_id: str) -> pd.DataFrame:
        """day (local date), total, peak_15min and its start (UTC), peak_kw (electricity:
        the peak quarter's average power), unit."""
        rows = []
        for (sid, d), day in sorted(self.days.items()):
            if sid != service_id:
                continue
            q, peak = max(day.quarters.items(), key=lambda kv: (kv[1], -kv[0]))
            rows.append((d, day.total, peak, pd.Timestamp(q, unit="s", tz="UTC"),
                         peak * 4 if self.utility == "electricity" else np.nan))
        df = pd.DataFrame(rows, columns=["day", "total", "peak_15min", "peak_start",
                                         "peak_kw"])
        df["unit"] = {"electricity": "kWh", "gas": "cubic feet", "water": "gallons"}[
            self.utility]
        return df

    def bill(self, service_id: str, month: str) -> pd.DataFrame:
        """The month's days so far, per tariff period: consumption in the priced unit,
        price and cost."""
        periods = self.tariff.periods.get(self.utility, ())
        use = np.zeros(len(periods) + 1)     # the last: hours no period covers
        for (sid, d), day in self.days.items():
            if sid == service_id and d.startswith(month):
                for p, v in day.tou.items():
                    use[p] += v
        scale = UNIT_SCALE[self.utility]
        rows = [(self.utility, p.name, use[i] * scale, PRICED_UNIT[self.utility], p.price,
                 use[i] * scale * p.price) for i, p in enumerate(periods)]
        if use[-1]:
            rows.append((self.utility, "unpriced", use[-1] * scale, PRICED_UNIT[self.utility],
                         np.nan, np.nan))
        return pd.DataFrame(rows, columns=["utility", "period", "consumption", "unit",
                                           "price", "cost"])
