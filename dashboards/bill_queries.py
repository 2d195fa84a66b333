"""What a household's page shows of its days (auth_kappa/insights/bills.py): the bill to
date with its time-of-use split, the daily totals and peaks, what was measured and what
only estimated, and the newest whole day among similar homes in the meter's state.

The workers keep each meter's days in Redis (one round trip here, plus one for the
similar-homes sketches of one day); prices come from the same tariff file the workers
use (AUTH_TARIFF). Months and days are the meter's local ones.
"""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

from auth_kappa import timezones
from auth_kappa.insights.bills import Day, bill_frame, days_frame, days_from, similar_from
from auth_kappa.insights.tariff import Tariff
from auth_kappa.topology.schema import UNITS
from dashboards.alert_queries import Snapshot
from dashboards.readers import Reader

DAYS_SHOWN = 31


async def meter_bill(src: Reader, tariff: Tariff, snap: Snapshot, service_id: str,
                     month: str | None) -> dict:
    """Per utility: the month's bill (the newest month by default), its days, the use
    estimated for the gaps that closed in it, and how the newest whole day compares."""
    out: dict[str, dict] = {}
    for utility, records in (await src.days(service_id)).items():
        days = days_from(records)
        if not days:
            continue
        shown = month or days[-1].date[:7]
        mine = [d for d in days if d.date.startswith(shown)]
        out[utility] = {
            "month": shown, "unit": UNITS[utility],
            "bill": _records(bill_frame(utility, tariff, mine)) if mine else [],
            "measured": sum(d.total for d in mine),
            "estimated": _estimated(snap, service_id, utility, mine),
            "days": _records(days_frame(utility, days[-DAYS_SHOWN:]).assign(
                peak_start=lambda f: f["peak_start"].astype("int64") // 10**9)),
            "similar": await _similar(src, utility, days),
        }
        bill = out[utility]["bill"]
        out[utility]["cost"] = sum(r["cost"] for r in bill if r["cost"] is not None)
    return {"service_id": service_id, "utilities": out}


def _estimated(snap: Snapshot, service_id: str, utility: str, days: list[Day]) -> float:
    """Use estimated for the gaps held (closed ones: 7 days) that began on these days."""
    if not days:
        return 0.0
    dates = {d.date for d in days}
    zone = ZoneInfo(timezones.zone_of(days[-1].profile[0] or None))
    return float(sum(a.get("estimated") or 0.0 for a in snap.by_meter.get(service_id, [])
                     if a["utility"] == utility and a["kind"] == "gap" and not a["open"]
                     and datetime.fromtimestamp(a["start"], zone).date().isoformat() in dates))


async def _similar(src: Reader, utility: str, days: list[Day]) -> dict | None:
    """The newest day that is over, among homes of the same state and meter type."""
    if len(days) < 2:
        return None
    day = days[-2]
    state, kind = day.profile
    shares = (await src.sketches(utility, day.date)).get(f"{state}:{kind}", [])
    return similar_from(utility, day, shares)


def _records(df) -> list[dict]:
    """JSON-ready rows: NaN becomes null."""
    return [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()}
            for r in df.to_dict("records")]
