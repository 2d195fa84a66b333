"""CSV downloads (`format=csv`) of the same dicts the JSON API returns, for spreadsheets.

Built from the JSON reply, never from a second query, so a CSV row always equals its JSON
row. Times are ISO 8601 in UTC (`...Z`), plus the meter's local time where a meter has one;
numbers are written with repr(), which reads back to the same float.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence

from starlette.responses import Response

from auth_kappa import timezones


def iso_utc(t: int | None) -> str:
    """2026-03-02T00:19:00Z; empty for no time."""
    if t is None:
        return ""
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_local(t: int | None, zone: str) -> str:
    """2026-03-01T19:19:00-05:00: the wall clock where the meter is."""
    if t is None:
        return ""
    return dt.datetime.fromtimestamp(t, timezones.tzinfo(zone)).isoformat()


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")   # RFC 4180 line ends
    writer.writerow(header)
    writer.writerows([_cell(v) for v in row] for row in rows)
    return out.getvalue()


def response(text: str, filename: str) -> Response:
    """A download: text/csv, attachment with a filename, not cached (per-user and live)."""
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"',
                             "Cache-Control": "no-store"})


def meter_windows(data: dict) -> tuple[str, str]:
    """(csv, filename) of /api/meters/{id}/windows: one row per stored window."""
    zone = data.get("time_zone") or timezones.UTC
    rows = ([iso_utc(w["window_start"]), iso_utc(w["window_end"]),
             iso_local(w["window_start"], zone), w["sum"], w["count"], w["min"], w["max"],
             data["unit"]] for w in data["windows"])
    text = table(["window_start_utc", "window_end_utc", "window_start_local", "sum", "count",
                  "min", "max", "unit"], rows)
    stamp = iso_utc(data["from"]).replace(":", "").replace("-", "")
    return text, f"meter-{data['service_id']}-{data['utility']}-{data['size']}s-{stamp}.csv"


def fleet_states(data: dict) -> tuple[str, str]:
    """(csv, filename) of /api/fleet/states: all 51 regions, ranked as the top-10 table."""
    order = sorted(data["states"], key=lambda s: (-data["states"][s]["sum"], s))
    rows = ([rank, s, data["states"][s]["sum"], data["states"][s]["count"], data["unit"],
             iso_utc(data["from"]), iso_utc(data["to"])] for rank, s in enumerate(order, 1))
    text = table(["rank", "state", "sum", "count", "unit", "from_utc", "to_utc"], rows)
    return text, f"fleet-states-{data['utility']}-{data['range']}.csv"


SUMMARY_COLUMNS = ("unit", "ingest_rate", "accepted", "duplicates", "late", "quarantined",
                   "watermark_lag_s", "partition_skew_s")


def fleet_summary(data: dict) -> tuple[str, str]:
    """(csv, filename) of /api/fleet/summary: one row per utility, as the totals table."""
    rows = ([u, v["today"]["date"], v["today"]["sum"], v["today"]["count"],
             *(v[k] for k in SUMMARY_COLUMNS), iso_utc(v["newest"]), iso_utc(v["watermark"])]
            for u, v in data["utilities"].items())
    text = table(["utility", "day_utc", "day_sum", "day_count", *SUMMARY_COLUMNS,
                  "newest_utc", "watermark_utc"], rows)
    return text, "fleet-summary.csv"
