"""An alert in plain words, as a household reads it: local times, the page's units.

The engine's alert (auth_kappa/insights/alerts.py) carries epoch seconds, stored units and
a detail meant for engineers; a household wants "No water reading since 14:05 (about 35
minutes)". `now` is the utility's event-time clock (the newest reading the workers
applied), the same "now" as the rest of the page; times are in the meter's zone and shown
with the date when they fall on another local day than `now`.
"""

from __future__ import annotations

import datetime as dt
import math
import re

from auth_kappa import timezones
from auth_kappa.topology.schema import UNITS
from dashboards import units

_USUAL = re.compile(r"usual (-?[0-9.]+(?:e-?[0-9]+)?)")


def number(x: float) -> str:
    """Three significant digits below 1,000, whole numbers with separators above."""
    if not math.isfinite(x):
        return "?"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if x == 0:
        return "0"
    digits = max(0, 2 - math.floor(math.log10(abs(x))))
    text = f"{round(x, digits):.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def amount(x: float, utility: str) -> str:
    """A stored quantity in the page's unit ("520 cubic feet (5.2 ccf)", "9.5 gallons")."""
    d = units.display(utility)
    shown = f"{number(x * float(d['factor']))} {d['unit']}"
    return shown if d["unit"] == UNITS[utility] else f"{shown} ({number(x)} {UNITS[utility]})"


def clock_time(t: float, zone: str, now: float | None) -> str:
    """14:05 where the meter is; "Mar 2, 14:05" on another local day than now."""
    local = dt.datetime.fromtimestamp(t, timezones.tzinfo(zone))
    same = now is not None and timezones.local_date(now, zone) == local.date()
    return local.strftime("%H:%M") if same else f"{local:%b} {local.day}, {local:%H:%M}"


def about(seconds: float) -> str:
    """35 minutes, 3 hours, 2 days: rounded, as people say it."""
    m = max(0, round(seconds / 60))
    if m < 120:
        return f"{m} minute{'s' if m != 1 else ''}"
    h = round(seconds / 3600)
    if h < 48:
        return f"{h} hours"
    return f"{round(seconds / 86400)} days"


def sentence(alert: dict, zone: str, now: float | None) -> str:
    """One alert (the API's dict: kind, utility, start, end, value, detail) in words."""
    kind, u = alert["kind"], alert["utility"]
    start, end, value = alert["start"], alert["end"], float(alert["value"])

    def at(t: float) -> str:
        return clock_time(t, zone, now)

    def until(t: float) -> str:   # an end: no date again on the start's day or an hour on
        return clock_time(t, zone, start if t - start > 3600 else t)

    if kind == "gap":
        if end is None:
            since = "" if now is None else f" (about {about(now - start)})"
            return f"No {u} reading since {at(start)}{since}"
        missed = int(value)
        return (f"No {u} reading from {at(start)} to {until(end)} ({about(end - start)}, "
                f"{missed} reading{'s' if missed != 1 else ''} missed)")
    if kind == "leak":
        flow = amount(math.floor(value * 10) / 10, u)   # "at least": never round up
        if end is None:
            hours = "" if now is None else f" for {int((now - start) // 3600)} hours"
            return (f"Water has run at least {flow} every hour{hours} (since {at(start)}): "
                    "possible leak")
        return (f"Water ran at least {flow} every hour from {at(start)} to {until(end)} "
                f"({int((end - start) // 3600)} hours): possible leak, now stopped")
    if kind == "spike":
        text = (f"{u.capitalize()} use from {at(start)} to "
                f"{until(end if end is not None else start + 3600)} was {amount(value, u)}")
        usual = _USUAL.search(alert.get("detail") or "")
        if usual and float(usual.group(1)) > 0:
            ratio = value / float(usual.group(1))
            times = f"{ratio:.0f}" if ratio >= 2 else f"{ratio:.1f}"
            text += f", about {times} times your usual for that hour"
        return text
    return f"{kind} alert on {u} since {at(start)}"
