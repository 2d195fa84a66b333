"""What the pages show of the alerts (auth_kappa/insights): a household's, and the fleet's
counts by kind and state with the list of open ones.

Both come from one snapshot of every alert the store holds (one pipelined round trip per
node: each partition's open alerts and history), cached like the other fleet answers; a
household's answer is then a lookup in it, not a read of its own. The state of a meter is
the registry's (read once a minute per alerting meter). Times are epoch seconds (integers),
values in the stored unit, and each alert carries its sentence (dashboards/alert_words.py)
in the meter's local time and the page's units.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from auth_kappa import timezones
from auth_kappa.topology.schema import UTILITIES
from dashboards.alert_words import sentence
from dashboards.readers import Reader

KINDS = ("gap", "leak", "spike")
RECENT = 20     # closed alerts per utility on a household's page, newest end first
LISTED = 500    # open alerts the fleet page lists, newest start first


@dataclass(frozen=True)
class Snapshot:
    alerts: list[dict]                          # every alert held, decoded
    by_meter: dict[str, list[dict]]
    owners: dict[str, dict[str, str] | None]    # registry entry of each alerting meter


def decoded(raw: bytes | str) -> dict:
    """A stored alert as the API gives it: times as integers, `open` spelled out."""
    a = orjson.loads(raw)
    end = a.get("end")
    return {"kind": a["kind"], "utility": a["utility"], "service_id": a["service_id"],
            "start": round(a["start"]), "end": None if end is None else round(end),
            "open": end is None, "value": float(a["value"]), "detail": a.get("detail", ""),
            "estimated": a.get("estimated")}


class Decoder:
    """Decoded alerts by their stored JSON, kept from one snapshot to the next: an alert
    changes at most once per checkpoint, so a refresh decodes only the new ones (decoding
    was 3/4 of a 110,000-alert snapshot's cost)."""

    def __init__(self) -> None:
        self._known: dict[bytes, dict] = {}

    def __call__(self, raws: list[bytes]) -> list[dict]:
        known, now = self._known, {}
        for raw in raws:
            now[raw] = known.get(raw) or decoded(raw)
        self._known = now
        return list(now.values()) if len(now) == len(raws) else [now[r] for r in raws]


async def snapshot(src: Reader, decode: Decoder | None = None) -> Snapshot:
    alerts = (decode or Decoder())(await src.alerts())
    by_meter: dict[str, list[dict]] = {}
    for a in alerts:
        by_meter.setdefault(a["service_id"], []).append(a)
    return Snapshot(alerts, by_meter, await src.owners(sorted(by_meter)))


def _worded(a: dict, owner: dict[str, str] | None, newest: dict[str, int]) -> dict:
    zone = timezones.zone_of(owner.get("state") if owner else None)
    return {**a, "text": sentence(a, zone, newest.get(a["utility"]))}


async def meter_alerts(src: Reader, snap: Snapshot, service_id: str,
                       owner: dict[str, str] | None) -> dict:
    """A household's open alerts and its RECENT latest closed ones, per utility."""
    newest = (await src.clock()).newest
    per: dict[str, dict[str, list[dict]]] = {u: {"open": [], "closed": []} for u in UTILITIES}
    for a in snap.by_meter.get(service_id, []):
        per[a["utility"]]["open" if a["open"] else "closed"].append(_worded(a, owner, newest))
    for lists in per.values():
        lists["open"].sort(key=lambda a: (a["start"], a["kind"]))
        lists["closed"].sort(key=lambda a: (-a["end"], -a["start"], a["kind"]))
        del lists["closed"][RECENT:]
    return {"service_id": service_id,
            "time_zone": timezones.zone_of(owner.get("state") if owner else None),
            "open": sum(len(v["open"]) for v in per.values()), "recent": RECENT,
            "utilities": per}


async def fleet_alerts(src: Reader, snap: Snapshot) -> dict:
    """Counts by kind and the meter's registered state (open and closed still held), and
    the LISTED newest open alerts with a link that signs the household's page."""
    newest = (await src.clock()).newest
    counts: dict[tuple[str, str | None], dict[str, int]] = {}
    totals = {k: {"open": 0, "closed": 0} for k in KINDS}
    for a in snap.alerts:
        owner = snap.owners.get(a["service_id"])
        state = owner.get("state") if owner else None
        which = "open" if a["open"] else "closed"
        counts.setdefault((a["kind"], state), {"open": 0, "closed": 0})[which] += 1
        totals.setdefault(a["kind"], {"open": 0, "closed": 0})[which] += 1
    opened = sorted((a for a in snap.alerts if a["open"]),
                    key=lambda a: (-a["start"], a["kind"], a["service_id"]))
    listed = []
    for a in opened[:LISTED]:
        owner = snap.owners.get(a["service_id"]) or {}
        listed.append({**_worded(a, owner or None, newest),
                       "user_name": owner.get("user_name"), "state": owner.get("state"),
                       "type": owner.get("type"),
                       "link": f"/household/{a['service_id']}/link"})
    return {"kinds": list(totals), "totals": totals,
            "counts": [{"kind": k, "state": s, **n} for (k, s), n in
                       sorted(counts.items(), key=lambda kv: (kv[0][0], kv[0][1] or "~"))],
            "open_total": len(opened), "open": listed, "listed_at_most": LISTED}
