"""A correction's bills: late readings that reach the archive change the local days they
fall in, so the days (total, peak quarter, time-of-use totals: what a bill adds up) are
found again from the range's final windows, by the same ledger the live workers run.

A day is rewritten when it lies wholly in the range (its local midnights, in its meter's
state's zone), is final in the live namespace, is older than the meter's open day (the
newest day is still the live workers' to write) and is within what Redis keeps of the
meter's days; and only where it differs (beyond 1e-9 relative, as windows). Similar-homes
sketches are not rewritten: a day's standing keeps the live sketch of its group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from auth_kappa.insights.bills import Day, expired
from auth_kappa.insights.stage import Insights
from auth_kappa.state.redis_store import RedisWindowStore
from auth_kappa.timezones import day_bounds, zone_of
from auth_kappa.topology.schema import STATES
from auth_kappa.topology.windows import is_closed

REL_TOL = 1e-9


@dataclass
class DayFix:
    changed: int = 0
    added: int = 0
    unchanged: int = 0
    skipped_open: int = 0    # the meter's newest day: the live workers write it


Candidate = tuple[str, str, int, Day]   # utility, service_id, partition, the day found


def fix_days(insights: Insights, live: RedisWindowStore, start: int, end: int,
             grace: float, low: dict[str, float]) -> DayFix:
    """Rewrite the range's days that the archive's readings changed."""
    found = candidates(insights, start, end, grace, low)
    pipe = live.client.pipeline(transaction=False)
    for utility, sid, p, _ in found:
        pipe.hgetall(live.keys.days(sid, utility, p))
        pipe.hget(live.keys.insight("days", utility, p), sid)
    replies = pipe.execute() if found else []
    fix, writes = DayFix(), live.client.pipeline(transaction=False)
    for (utility, sid, p, day), past, open_raw in zip(found, replies[0::2], replies[1::2],
                                                      strict=True):
        held = {k.decode() if isinstance(k, bytes) else k: v for k, v in past.items()}
        newest = max([*held, *([Day.decode(open_raw).date] if open_raw else [])], default="")
        if open_raw and day.date >= newest:
            fix.skipped_open += 1
            continue
        if newest and day.date <= expired(newest):
            continue                       # older than what Redis keeps of this meter
        old = held.get(day.date)
        if old is not None and same(Day.decode(old), day):
            fix.unchanged += 1
            continue
        writes.hset(live.keys.days(sid, utility, p), day.date, day.encode())
        fix.added += old is None
        fix.changed += old is not None
    if fix.added or fix.changed:
        writes.execute()
    return fix


def candidates(insights: Insights, start: int, end: int, grace: float,
               low: dict[str, float]) -> list[Candidate]:
    """The recomputed days wholly in [start, end) and final in the live namespace."""
    out = []
    for utility, led in insights.ledgers.items():
        if utility not in low:
            continue
        days = [*((sid, d) for (sid, _), d in led.kept.items()), *led.open.items()]
        for sid, day in days:
            if day.state < 0:
                continue                   # no state read: its local day is unknown
            lo, hi = day_bounds(day.date, zone_of(STATES[day.state]))
            if start <= lo and hi <= end and is_closed(hi, grace, low[utility]):
                out.append((utility, sid, max(led.part.get(sid, 0), 0), day))
    return out


def same(a: Day, b: Day) -> bool:
    """Equal as a bill sees it: float sums in another order are not a correction."""
    def close(x: float, y: float) -> bool:
        return math.isclose(x, y, rel_tol=REL_TOL, abs_tol=1e-12)
    peak_a, q_a = a.peak_now()
    peak_b, q_b = b.peak_now()
    tou_a, tou_b = (t + [0.0] * (max(len(a.tou), len(b.tou)) - len(t)) for t in (a.tou, b.tou))
    return (a.date == b.date and close(a.total, b.total) and close(peak_a, peak_b)
            and q_a == q_b and all(close(x, y) for x, y in zip(tou_a, tou_b, strict=True)))
