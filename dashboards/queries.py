"""What the pages show, computed once for the JSON API, the SSE streams and the HTML pages.

"Now" is event time: the newest reading the workers applied for that utility (the
wall clock never decides which windows are current, as in the engine). A meter's "today"
is the local day (its state's time zone, auth_kappa/timezones.py) of that newest reading;
the wall clock only says whether that day is still today or the latest day in the data.
The fleet's day is the UTC day. The last hour is drawn from the finest windows (1m), the
last day from the hourly ones. Every time in the API is epoch seconds (an integer).
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import time

import numpy as np

from auth_kappa import timezones
from auth_kappa.topology.schema import STATES, UNITS, UTILITIES
from dashboards import units
from dashboards.readers import COUNTERS, Reader
from dashboards.validation import RANGES

DAY = 86400


def aligned(t: int, size: int, n: int) -> list[int]:
    """The n window starts ending with the window that holds t (shared: do not mutate)."""
    return _aligned(t // size * size, size, n)


@functools.lru_cache(maxsize=256)
def _aligned(last: int, size: int, n: int) -> list[int]:
    return [last - size * (n - 1 - i) for i in range(n)]


def coarse_size(sizes: tuple[int, ...]) -> int:
    return 3600 if 3600 in sizes else sizes[0]


def summary_windows(sizes: tuple[int, ...]) -> dict[int, int]:
    """Window size -> how many of the newest windows a household summary reads per
    utility: an hour of the finest, 25 hours of the coarse (a local day can last 25)."""
    fine, coarse = sizes[0], coarse_size(sizes)
    out = {coarse: max(max(1, DAY // coarse), (DAY + 3600) // coarse)}
    out[fine] = max(out.get(fine, 0), max(1, 3600 // fine))
    return out


def range_size(sizes: tuple[int, ...], rng: str) -> int:
    return sizes[0] if rng == "hour" else coarse_size(sizes)


def _num(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _cell(start: int, size: int, v: np.void) -> dict:
    return {"window_start": start, "window_end": start + size, "sum": float(v["sum"]),
            "count": int(v["count"]), "min": _num(v["min"]), "max": _num(v["max"])}


def _series(starts: list[int], size: int, v: np.ndarray) -> dict:
    # NaN marks an empty window; orjson writes it as null (the chart's gap)
    return {"size": size, "start": starts,
            "sum": np.where(v["count"] > 0, v["sum"], np.nan).tolist(),
            "count": v["count"].tolist()}


def meter_info(info: dict | None) -> dict | None:
    """A registry entry as the API gives it: registered_ts as epoch seconds (an integer, like
    every other time in the API; the sources hold strings) and the meter's time zone."""
    if info is None:
        return None
    ts = str(info.get("registered_ts") or "")
    return {**info, "registered_ts": int(ts) if ts.isascii() and ts.isdigit() else None,
            "time_zone": timezones.zone_of(info.get("state"))}


def _day(t: int, zone: str, now: float) -> dict:
    """The local day of event time t: its midnight, date, and whether it is still today.
    Cached: every household page at a given clock asks the same few (t, zone)."""
    start, date = _local_day(t, zone)
    return {"from": start, "to": t + 1, "date": date.isoformat(),
            "is_today": date == _local_date(int(now), zone)}


@functools.lru_cache(maxsize=1024)
def _local_day(t: int, zone: str) -> tuple[int, dt.date]:
    return timezones.day_start(t, zone), timezones.local_date(t, zone)


@functools.lru_cache(maxsize=256)
def _local_date(t: int, zone: str) -> dt.date:
    """(Whole seconds: zones are whole hours from UTC, so a date changes on a second.)"""
    return timezones.local_date(t, zone)


async def meter_summary(src: Reader, service_id: str, rng: str) -> dict | None:
    """Three cards: this minute, the local day's total, the last hour (1m) or day (1h) series.

    One source call (one Redis round trip); it reads 25 hours of hourly windows, as the zone
    is known only once the registry entry is back and a local day can last 25 hours. None
    when the meter is neither registered nor has any stored window."""
    clock = await src.clock()
    fine, coarse = src.sizes[0], coarse_size(src.sizes)
    shown = max(1, DAY // coarse)
    n = summary_windows(src.sizes)
    reads, plan = [], []
    for u in UTILITIES:
        t = clock.newest.get(u)
        if t is None:
            continue
        reads.append((u, fine, aligned(t, fine, max(1, 3600 // fine))))
        reads.append((u, coarse, aligned(t, coarse, n[coarse])))
        plan.append((u, t))
    info, values = await src.meter(service_id, reads)
    info = meter_info(info)
    zone = info["time_zone"] if info else timezones.UTC
    now = time.time()
    cards, seen = {}, 0
    for i, (u, t) in enumerate(plan):
        (_, _, fstarts), (_, _, cstarts) = reads[2 * i], reads[2 * i + 1]
        fv, cv = values[2 * i], values[2 * i + 1]
        seen += int(fv["count"].sum() + cv["count"].sum())
        filled = np.flatnonzero(fv["count"] > 0)
        current = _cell(fstarts[filled[-1]], fine, fv[filled[-1]]) if len(filled) else None
        day = _day(t, zone, now)
        today = np.asarray(cstarts) >= day["from"]
        cards[u] = {
            "unit": UNITS[u], "display": units.display(u), "clock": t, "current": current,
            "today": {**day, "sum": float(cv["sum"][today].sum()),
                      "count": int(cv["count"][today].sum())},
            "series": _series(fstarts, fine, fv) if rng == "hour" else
            _series(cstarts[-shown:], coarse, cv[-shown:]),
        }
    for u in UTILITIES:
        cards.setdefault(u, {"unit": UNITS[u], "display": units.display(u), "clock": None,
                             "current": None,
                             "today": {"from": None, "to": None, "date": None,
                                       "is_today": False, "sum": 0.0, "count": 0},
                             "series": {"size": range_size(src.sizes, rng), "start": [],
                                        "sum": [], "count": []}})
    if info is None and not seen:
        return None
    return {"service_id": service_id, "meter": info, "time_zone": zone, "range": rng,
            "utilities": cards}


async def meter_windows(src: Reader, service_id: str, utility: str, size: int,
                        start: int, end: int) -> dict:
    """Stored windows of one meter in [start, end) (validated and aligned by the caller)."""
    starts = list(range(start, end, size))
    info, (v,) = await src.meter(service_id, [(utility, size, starts)])
    info = meter_info(info)
    keep = np.flatnonzero(v["count"] > 0)
    return {"service_id": service_id, "utility": utility, "unit": UNITS[utility], "size": size,
            "time_zone": info["time_zone"] if info else timezones.UTC,
            "from": start, "to": end, "windows": [_cell(starts[i], size, v[i]) for i in keep]}


async def fleet_states(src: Reader, utility: str, rng: str) -> dict:
    """Per-state totals over the last hour or day: the choropleth and the top-10 table."""
    clock = await src.clock()
    t = clock.newest.get(utility)
    size = range_size(src.sizes, rng)
    starts = aligned(t, size, max(1, RANGES[rng] // size)) if t is not None else []
    v = await src.states(utility, size, starts)
    sums, counts = v["sum"].sum(axis=1), v["count"].sum(axis=1)
    states = {s: {"sum": float(sums[i]), "count": int(counts[i])} for i, s in enumerate(STATES)}
    order = sorted(STATES, key=lambda s: (-states[s]["sum"], s))
    return {"utility": utility, "unit": UNITS[utility], "display": units.display(utility),
            "range": rng, "clock": t,
            "from": starts[0] if starts else None,
            "to": starts[-1] + size if starts else None,
            "total": {"sum": float(sums.sum()), "count": int(counts.sum())},
            "states": states,
            "top10": [{"rank": i + 1, "state": s, **states[s]} for i, s in enumerate(order[:10])]}


async def fleet_summary(src: Reader, rates: dict[str, float | None]) -> dict:
    """Fleet totals today, counters, ingest rate and watermark lag per utility."""
    clock, stats = await src.clock(), await src.stats()
    coarse = coarse_size(src.sizes)
    now = time.time()
    out = {}
    for u in UTILITIES:
        t, wm = clock.newest.get(u), clock.watermark.get(u)
        total = {"sum": 0.0, "count": 0, "from": None, "to": None, "date": None,
                 "is_today": False}
        if t is not None:
            day = _day(t, timezones.UTC, now)
            starts = aligned(t, coarse, (t // coarse * coarse - day["from"]) // coarse + 1)
            v = await src.states(u, coarse, starts)
            total = {**day, "sum": float(v["sum"].sum()), "count": int(v["count"].sum())}
        out[u] = {
            "unit": UNITS[u], "display": units.display(u), "newest": t, "watermark": wm,
            "today": total,
            "watermark_lag_s": None if wm is None else round(now - wm, 3),
            "partition_skew_s": None if wm is None or t is None else t - wm,
            "ingest_rate": rates.get(u),
            **{name: stats.get(name, u) for name in COUNTERS},
        }
    return {"source": src.kind, "namespace": clock.namespace,
            "checkpoint_age_s": None if clock.checkpoint_ts is None else
            round(now - clock.checkpoint_ts, 3),
            "meters": await src.registry_size(), "utilities": out}
