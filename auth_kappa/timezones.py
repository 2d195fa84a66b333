"""A meter's local time zone, from its state: pages and bills count days as the
household lives them.

The registry knows a meter's state, not its county, so each state maps to one IANA zone.
States split between zones get the zone most of their people live in:

  FL  America/New_York      (the western panhandle is Central)
  ID  America/Boise         (Mountain; the northern panhandle is Pacific)
  IN  America/Indiana/Indianapolis  (Eastern; the north-west and south-west corners are Central)
  KS  America/Chicago       (four western counties are Mountain)
  KY  America/New_York      (the western half is Central)
  MI  America/Detroit       (four Upper Peninsula counties are Central)
  ND  America/Chicago       (the south-west is Mountain)
  NE  America/Chicago       (the panhandle is Mountain)
  OR  America/Los_Angeles   (most of Malheur County is Mountain)
  SD  America/Chicago       (the western half is Mountain)
  TN  America/Chicago       (Nashville and Memphis; East Tennessee is Eastern)
  TX  America/Chicago       (El Paso and Hudspeth are Mountain)

AZ stays on America/Phoenix (no daylight saving time). Every US zone is a whole number of
hours from UTC, so a local midnight is always the start of an hourly window. Uses the
system's tz database (zoneinfo); Debian ships it as the tzdata package.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

UTC = "UTC"
ZONES: dict[str, str] = {
    "AL": "America/Chicago", "AK": "America/Anchorage", "AZ": "America/Phoenix",
    "AR": "America/Chicago", "CA": "America/Los_Angeles", "CO": "America/Denver",
    "CT": "America/New_York", "DE": "America/New_York", "DC": "America/New_York",
    "FL": "America/New_York", "GA": "America/New_York", "HI": "Pacific/Honolulu",
    "ID": "America/Boise", "IL": "America/Chicago", "IN": "America/Indiana/Indianapolis",
    "IA": "America/Chicago", "KS": "America/Chicago", "KY": "America/New_York",
    "LA": "America/Chicago", "ME": "America/New_York", "MD": "America/New_York",
    "MA": "America/New_York", "MI": "America/Detroit", "MN": "America/Chicago",
    "MS": "America/Chicago", "MO": "America/Chicago", "MT": "America/Denver",
    "NE": "America/Chicago", "NV": "America/Los_Angeles", "NH": "America/New_York",
    "NJ": "America/New_York", "NM": "America/Denver", "NY": "America/New_York",
    "NC": "America/New_York", "ND": "America/Chicago", "OH": "America/New_York",
    "OK": "America/Chicago", "OR": "America/Los_Angeles", "PA": "America/New_York",
    "RI": "America/New_York", "SC": "America/New_York", "SD": "America/Chicago",
    "TN": "America/Chicago", "TX": "America/Chicago", "UT": "America/Denver",
    "VT": "America/New_York", "VA": "America/New_York", "WA": "America/Los_Angeles",
    "WV": "America/New_York", "WI": "America/Chicago", "WY": "America/Denver",
}


def zone_of(state: str | None) -> str:
    """The IANA zone of a two-letter state code; UTC for an unknown or missing state."""
    return ZONES.get(state or "", UTC)


@cache
def tzinfo(name: str) -> ZoneInfo:
    """The zone, loaded once."""
    return ZoneInfo(name)


def local_date(t: float, zone: str) -> dt.date:
    """The calendar date at epoch second t in that zone."""
    return dt.datetime.fromtimestamp(t, tzinfo(zone)).date()


def day_start(t: int, zone: str) -> int:
    """Epoch second of local midnight of the day holding t (days are 23-25 h around DST)."""
    local = dt.datetime.fromtimestamp(t, tzinfo(zone))
    midnight = dt.datetime.combine(local.date(), dt.time(), tzinfo=tzinfo(zone))
    return int(midnight.timestamp())


def day_bounds(date: str, zone: str) -> tuple[int, int]:
    """Epoch seconds of a local date's midnight and of the next one."""
    day = dt.date.fromisoformat(date)
    lo, hi = (int(dt.datetime.combine(d, dt.time(), tzinfo=tzinfo(zone)).timestamp())
              for d in (day, day + dt.timedelta(days=1)))
    return lo, hi


@cache
def _hour(zone: str, utc_hour: int) -> tuple[str, int, int]:
    local = dt.datetime.fromtimestamp(utc_hour * 3600, tzinfo(zone))
    return local.date().isoformat(), local.hour, local.weekday()


def local_hours(starts: np.ndarray, zones: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per epoch second and zone: local date (YYYY-MM-DD, object array), hour and weekday
    (0 = Monday). Whole-hour zones: worked out once per zone and UTC hour, not per row.
    Zones are told apart by hashing (a sort of the names' strings cost 30 ms per 75,000
    rows, the time of everything else here together)."""
    zone_idx, names = pd.factorize(np.asarray(zones, object).ravel(), use_na_sentinel=False)
    hours = np.asarray(starts, np.int64) // 3600
    pairs, inverse = np.unique(hours * len(names) + zone_idx.ravel(), return_inverse=True)
    hour_of, zone_of_pair = (a.tolist() for a in divmod(pairs, len(names) or 1))
    parts = [_hour(str(names[z]), h) for h, z in zip(hour_of, zone_of_pair, strict=True)]
    inverse = inverse.ravel()
    date = np.array([p[0] for p in parts], object)[inverse]
    hour = np.array([p[1] for p in parts], np.int64)[inverse]
    weekday = np.array([p[2] for p in parts], np.int64)[inverse]
    return date, hour, weekday
