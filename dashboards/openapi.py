"""The OpenAPI 3.1 document served at /openapi.json, generated from the app's routes.

Paths, methods, path parameters, security and the usual error answers come from the
routes and from who may call them; what a route cannot say (its summary, its query
parameters, the shape of its answer) is written here, per handler. An /api route without
an entry is an error, so a new endpoint cannot go undocumented.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from starlette.routing import BaseRoute, Route

from auth_kappa.topology.schema import STATES, UTILITIES

_SID = {"name": "service_id", "in": "path", "required": True,
        "schema": {"type": "string", "format": "uuid", "pattern": "^[0-9a-f-]{36}$"}}
_SIG = {"name": "sig", "in": "query", "required": False,
        "description": "the household's signed-link signature, <expiry>.<hmac> (not needed "
                       "with the operator token; refused after its expiry)",
        "schema": {"type": "string", "pattern": "^[0-9]{1,12}\\.[A-Za-z0-9_-]{24}$"}}
_RANGE = {"name": "range", "in": "query", "required": False,
          "description": "hour: 1-minute windows of the last hour; day: hourly windows of "
                         "the last 24 hours", "schema": {"enum": ["hour", "day"], "default": "hour"}}
_UTILITY = {"name": "utility", "in": "query", "required": False,
            "schema": {"enum": list(UTILITIES), "default": "electricity"}}
_FORMAT = {"name": "format", "in": "query", "required": False,
           "description": "csv: the same rows as a download (text/csv, Content-Disposition: "
                          "attachment), times as ISO 8601 UTC",
           "schema": {"enum": ["json", "csv"], "default": "json"}}
_TIME = {"description": "epoch seconds, or ISO 8601 with an offset (2026-03-02T10:00:00Z, "
                        "2026-03-02T05:00:00-05:00); a time without an offset is refused",
         "schema": {"oneOf": [{"type": "integer"}, {"type": "string", "format": "date-time"}]}}
_ERR = {"description": "error", "content": {"application/json": {"schema": {
    "$ref": "#/components/schemas/Error"}}}}
_METER_ERRS = {"400": _ERR, "401": _ERR, "403": _ERR, "404": _ERR}
_OP_ERRS = {"400": _ERR, "401": _ERR, "403": _ERR}


def _json(ref: str, description: str = "ok") -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


def _json_or_csv(ref: str) -> dict:
    ok = _json(ref, "ok (format=csv: text/csv)")
    ok["content"]["text/csv"] = {"schema": {"type": "string"}}
    return ok


def _sse(description: str) -> dict:
    return {"description": description, "content": {"text/event-stream": {
        "schema": {"type": "string"}}}}


_WINDOW = {"type": "object", "properties": {
    "window_start": {"type": "integer"}, "window_end": {"type": "integer"},
    "sum": {"type": "number"}, "count": {"type": "integer"},
    "min": {"type": ["number", "null"]}, "max": {"type": ["number", "null"]}}}
_TOTAL = {"type": "object", "properties": {"sum": {"type": "number"},
                                           "count": {"type": "integer"}}}
_DAY = {"type": "object", "properties": {
    "from": {"type": ["integer", "null"], "description": "local midnight (the meter's zone; "
                                                         "the fleet's: UTC)"},
    "to": {"type": ["integer", "null"]},
    "date": {"type": ["string", "null"], "format": "date"},
    "is_today": {"type": "boolean", "description": "false: the newest reading is from an "
                                                   "earlier day (the latest day in the data)"},
    "sum": {"type": "number"}, "count": {"type": "integer"}}}
_DISPLAY = {"type": "object", "description": "the unit the pages show: value x factor",
            "properties": {"unit": {"type": "string"}, "short": {"type": "string"},
                           "factor": {"type": "number"}}}
_METER = {"type": "object", "description": "registry entry", "properties": {
    "user_name": {"type": "string"}, "type": {"type": "string"},
    "state": {"enum": list(STATES)},
    "registered_ts": {"type": ["integer", "null"], "description": "epoch seconds"},
    "time_zone": {"type": "string", "description": "IANA zone of the state"}}}

_ALERT = {"type": "object", "description": "an insight alert (README, Insights)",
          "properties": {
              "kind": {"enum": ["gap", "leak", "spike"]}, "utility": {"enum": list(UTILITIES)},
              "service_id": {"type": "string"},
              "start": {"type": "integer"},
              "end": {"type": ["integer", "null"], "description": "null while open"},
              "open": {"type": "boolean"},
              "value": {"type": "number", "description": "gap: readings missed; leak: lowest "
                                                         "hourly flow; spike: the hour's total "
                                                         "(stored unit)"},
              "detail": {"type": "string"},
              "text": {"type": "string", "description": "in words: the meter's local time, "
                                                        "the page's units"}}}
_ALERT_REF = {"$ref": "#/components/schemas/Alert"}
_COUNTS = {"type": "object", "properties": {"open": {"type": "integer"},
                                            "closed": {"type": "integer",
                                                       "description": "still in history"}}}


_INFO = {"title": "AUTH-Kappa dashboard API", "version": "1",
         "description": "Window values of the one stream topology, read-only. Times are epoch "
                        "seconds (integers), event time; from/to also take ISO 8601 with an "
                        "offset. A meter's 'today' is the local day (its state's zone) of its "
                        "newest reading; the fleet's is the UTC day. format=csv gives the same "
                        "rows as a download."}
_SECURITY_SCHEMES = {
    "operatorToken": {"type": "http", "scheme": "bearer",
                      "description": "AUTH_OPERATOR_TOKEN (or the login cookie)"},
    "householdSignature": {"type": "apiKey", "in": "query", "name": "sig",
                           "description": "<expiry>.<HMAC of the service_id and the expiry>; "
                                          "that meter only, until the expiry "
                                          "(AUTH_DASHBOARD_LINK_TTL)"},
}
Access = Literal["public", "operator", "meter"]
# who may call a route decides its security and the errors every such route can answer
_SECURITY: dict[str, list[dict]] = {
    "public": [], "operator": [{"operatorToken": []}],
    "meter": [{"operatorToken": []}, {"householdSignature": []}]}
_ERRORS: dict[str, tuple[str, ...]] = {
    "public": (), "operator": ("400", "401", "403"), "meter": ("400", "401", "403", "404")}
_PATH_PARAMETERS = {"service_id": _SID}
_BUSY = {"429": _ERR, "503": _ERR}   # streams: per-client and global limits


@dataclass(frozen=True)
class Operation:
    """What a route cannot say about itself."""

    summary: str
    ok: dict                          # the 200 answer
    access: Access = "operator"
    query: tuple[dict, ...] = ()      # after the path's parameters (and before sig)
    errors: tuple[str, ...] | None = None   # None: the access's usual errors
    more: dict = field(default_factory=dict)   # further answers, e.g. _BUSY


# per handler (the route's endpoint name): every documented route's own words
OPERATIONS: dict[str, Operation] = {
    "meter_search": Operation(
        "Find meters by name or service_id prefix (operator)", _json("Search"),
        query=({"name": "q", "in": "query", "required": True,
                "schema": {"type": "string", "maxLength": 64}},
               {"name": "limit", "in": "query", "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": 50}})),
    "meter_summary": Operation(
        "One meter's three cards: current window, today, last hour or day",
        _json("MeterSummary"), "meter", (_RANGE,)),
    "meter_windows": Operation(
        "One meter's stored windows in a time range", _json_or_csv("MeterWindows"), "meter",
        ({**_UTILITY, "required": True},
         {"name": "window", "in": "query", "required": False,
          "schema": {"type": "string", "examples": ["1m", "1h"]}},
         {"name": "from", "in": "query", "required": False, **_TIME},
         {"name": "to", "in": "query", "required": False, **_TIME}, _FORMAT)),
    "meter_stream": Operation(
        "Live updates of the summary and alerts (SSE, events 'summary' and 'alerts')",
        _sse("event: summary, data: MeterSummary; event: alerts, data: MeterAlerts"),
        "meter", (_RANGE,), more=_BUSY),
    "meter_alerts": Operation(
        "One meter's open alerts and its latest closed ones, per utility, each also in "
        "words (local time, the page's units)", _json("MeterAlerts"), "meter",
        errors=_ERRORS["operator"]),   # a meter without alerts is an empty answer, not 404
    "meter_bill": Operation(
        "One meter's bill to date per utility (time-of-use split, cost), its local days "
        "with peaks, measured vs estimated use, and the newest whole day among similar "
        "homes", _json("MeterBill"), "meter",
        ({"name": "month", "in": "query", "required": False,
          "schema": {"type": "string", "pattern": "^[0-9]{4}-(0[1-9]|1[0-2])$"},
          "description": "the meter's local month; default its newest"},),
        errors=_ERRORS["operator"]),   # a meter without days is an empty answer, not 404
    "fleet_alerts": Operation(
        "Alert counts by kind and state, and the open alerts with links to their "
        "households (operator)", _json("FleetAlerts")),
    "fleet_summary": Operation(
        "Fleet totals today, counters, ingest rate, watermark lag (operator)",
        _json_or_csv("FleetSummary"), query=(_FORMAT,)),
    "fleet_states": Operation(
        "Per-state totals and the top 10 (the choropleth) (operator)",
        _json_or_csv("FleetStates"), query=(_UTILITY, _RANGE, _FORMAT)),
    "fleet_stream": Operation(
        "Live fleet updates (SSE, events 'summary', 'states' and 'alerts')",
        _sse("events summary, states and alerts"), query=(_UTILITY, _RANGE), more=_BUSY),
    "healthz": Operation(
        "Liveness and store reachability (public)", _json("Health"), "public",
        more={"503": _json("Health")}),
    "prometheus": Operation(
        "Prometheus text exposition (operator)", {"description": "text/plain 0.0.4"},
        errors=("401", "403")),
}


def spec(routes: Iterable[BaseRoute]) -> dict:
    """The document for these routes (the app's: `request.app.routes` or app.routes())."""
    return {"openapi": "3.1.0", "info": _INFO, "paths": paths(routes),
            "components": {"securitySchemes": _SECURITY_SCHEMES,
                           "schemas": {**_general_schemas(), **_meter_schemas(),
                                       **_fleet_schemas()}}}


def paths(routes: Iterable[BaseRoute]) -> dict[str, dict]:
    """Every route with an entry in OPERATIONS, by path; an /api route without one raises."""
    out: dict[str, dict] = {}
    for route in routes:
        if not isinstance(route, Route):
            continue
        op = OPERATIONS.get(getattr(route.endpoint, "__name__", ""))
        if op is None:
            if route.path.startswith("/api/"):
                raise LookupError(f"{route.path} has no entry in dashboards/openapi.py "
                                  "OPERATIONS")
            continue
        for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
            out.setdefault(route.path, {})[method.lower()] = operation(route, op)
    return dict(sorted(out.items()))


def operation(route: Route, op: Operation) -> dict:
    """One operation: the route's path parameters, then the handler's query parameters,
    then the signature a household's link carries."""
    parameters = [_PATH_PARAMETERS.get(name, {"name": name, "in": "path", "required": True,
                                              "schema": {"type": "string"}})
                  for name in route.param_convertors]
    parameters += [*op.query, *([_SIG] if op.access == "meter" else [])]
    errors = _ERRORS[op.access] if op.errors is None else op.errors
    out: dict = {"summary": op.summary}
    if _SECURITY[op.access]:
        out["security"] = _SECURITY[op.access]
    if parameters:
        out["parameters"] = parameters
    out["responses"] = {"200": op.ok, **dict.fromkeys(errors, _ERR), **op.more}
    return out


def _general_schemas() -> dict:
    """The error answer, /healthz and the operator's meter search."""
    return {
        "Error": {"type": "object", "properties": {"error": {"type": "string"}}},
        "Health": {"type": "object", "properties": {
            "status": {"enum": ["ok", "degraded"]}, "source": {"type": "string"},
            "store": {"enum": ["up", "down"]}}},
        "Search": {"type": "object", "properties": {
            "q": {"type": "string"}, "meters": {"type": "array", "items": {
                "type": "object", "properties": {
                    "service_id": {"type": "string"}, "user_name": {"type": "string"},
                    "type": {"type": "string"}, "state": {"enum": list(STATES)},
                    "registered_ts": {"type": ["integer", "null"],
                                      "description": "epoch seconds"},
                    "time_zone": {"type": "string"},
                    "link": {"type": "string",
                             "description": "opens the household's page: following "
                                            "it (operator) signs a link valid for "
                                            "AUTH_DASHBOARD_LINK_TTL and redirects "
                                            "there"}}}}}},
    }


def _meter_schemas() -> dict:
    """A household's answers: its cards, windows and alerts."""
    return {
        "Window": _WINDOW,
        "Card": {"type": "object", "properties": {
            "unit": {"type": "string"}, "display": _DISPLAY,
            "clock": {"type": ["integer", "null"]},
            "current": {"oneOf": [{"$ref": "#/components/schemas/Window"},
                                  {"type": "null"}]},
            "today": _DAY,
            "series": {"type": "object", "properties": {
                "size": {"type": "integer"},
                "start": {"type": "array", "items": {"type": "integer"}},
                "sum": {"type": "array", "items": {"type": ["number", "null"]}},
                "count": {"type": "array", "items": {"type": "integer"}}}}}},
        "MeterSummary": {"type": "object", "properties": {
            "service_id": {"type": "string"},
            "meter": {"oneOf": [_METER, {"type": "null"}]},
            "time_zone": {"type": "string", "description": "the meter's IANA zone "
                                                           "(UTC if unregistered)"},
            "range": {"enum": ["hour", "day"]},
            "utilities": {"type": "object", "properties": {
                u: {"$ref": "#/components/schemas/Card"} for u in UTILITIES}}}},
        "Alert": _ALERT,
        "MeterAlerts": {"type": "object", "properties": {
            "service_id": {"type": "string"}, "time_zone": {"type": "string"},
            "open": {"type": "integer", "description": "open alerts in all"},
            "recent": {"type": "integer",
                       "description": "closed alerts listed per utility at most"},
            "utilities": {"type": "object", "properties": {u: {
                "type": "object", "properties": {
                    "open": {"type": "array", "items": _ALERT_REF},
                    "closed": {"type": "array", "items": _ALERT_REF,
                               "description": "newest end first"}}}
                for u in UTILITIES}}}},
        "MeterBill": {"type": "object", "properties": {
            "service_id": {"type": "string"},
            "utilities": {"type": "object", "properties": {u: {
                "type": "object", "properties": {
                    "month": {"type": "string"}, "unit": {"type": "string"},
                    "cost": {"type": "number", "description": "the month's priced periods"},
                    "measured": {"type": "number", "description": "the month's use"},
                    "estimated": {"type": "number", "description":
                                  "use estimated for gaps that began in the month (held "
                                  "alerts), never in `measured`"},
                    "bill": {"type": "array", "items": {"type": "object", "properties": {
                        "period": {"type": "string"}, "consumption": {"type": "number"},
                        "unit": {"type": "string"}, "price": {"type": ["number", "null"]},
                        "cost": {"type": ["number", "null"]}}}},
                    "days": {"type": "array", "items": {"type": "object", "properties": {
                        "day": {"type": "string"}, "total": {"type": "number"},
                        "peak_15min": {"type": "number"}, "peak_start": {"type": "integer"},
                        "peak_kw": {"type": ["number", "null"]}, "unit": {"type": "string"}}}},
                    "similar": {"type": ["object", "null"], "properties": {
                        "day": {"type": "string"}, "state": {"type": "string"},
                        "type": {"type": "string"}, "total": {"type": "number"},
                        "percentile": {"type": "number"}, "homes": {"type": "integer"},
                        "median": {"type": "number"}}}}}
                for u in UTILITIES}}}},
        "MeterWindows": {"type": "object", "properties": {
            "service_id": {"type": "string"}, "utility": {"enum": list(UTILITIES)},
            "unit": {"type": "string"}, "size": {"type": "integer"},
            "time_zone": {"type": "string"},
            "from": {"type": "integer"}, "to": {"type": "integer"},
            "windows": {"type": "array",
                        "items": {"$ref": "#/components/schemas/Window"}}}},
    }


def _fleet_schemas() -> dict:
    """The operator's fleet answers."""
    return {
        "FleetAlerts": {"type": "object", "properties": {
            "kinds": {"type": "array", "items": {"type": "string"}},
            "totals": {"type": "object", "additionalProperties": _COUNTS},
            "counts": {"type": "array", "items": {"type": "object", "properties": {
                "kind": {"type": "string"},
                "state": {"type": ["string", "null"],
                          "description": "the registry's (null: unregistered)"},
                **_COUNTS["properties"]}}},
            "open_total": {"type": "integer"},
            "listed_at_most": {"type": "integer"},
            "open": {"type": "array", "description": "newest start first", "items": {
                "allOf": [_ALERT_REF, {"type": "object", "properties": {
                    "user_name": {"type": ["string", "null"]},
                    "state": {"type": ["string", "null"]},
                    "type": {"type": ["string", "null"]},
                    "link": {"type": "string", "description": "opens the "
                             "household's page: following it (operator) signs a "
                             "link and redirects there"}}}]}}}},
        "FleetStates": {"type": "object", "properties": {
            "utility": {"enum": list(UTILITIES)}, "unit": {"type": "string"},
            "display": _DISPLAY,
            "range": {"enum": ["hour", "day"]}, "clock": {"type": ["integer", "null"]},
            "from": {"type": ["integer", "null"]}, "to": {"type": ["integer", "null"]},
            "total": _TOTAL,
            "states": {"type": "object", "additionalProperties": _TOTAL,
                       "description": "all 50 states and DC"},
            "top10": {"type": "array", "items": {"type": "object", "properties": {
                "rank": {"type": "integer"}, "state": {"enum": list(STATES)},
                "sum": {"type": "number"}, "count": {"type": "integer"}}}}}},
        "FleetSummary": {"type": "object", "properties": {
            "source": {"enum": ["redis", "embedded"]}, "namespace": {"type": "string"},
            "checkpoint_age_s": {"type": ["number", "null"]},
            "meters": {"type": "integer"},
            "utilities": {"type": "object", "additionalProperties": {
                "type": "object", "properties": {
                    "unit": {"type": "string"}, "display": _DISPLAY,
                    "newest": {"type": ["integer", "null"]},
                    "watermark": {"type": ["integer", "null"]}, "today": _DAY,
                    "watermark_lag_s": {"type": ["number", "null"],
                                        "description": "wall clock minus watermark"},
                    "partition_skew_s": {"type": ["integer", "null"],
                                         "description": "newest event minus watermark"},
                    "ingest_rate": {"type": ["number", "null"],
                                    "description": "readings consumed/s, 10 s average"},
                    "accepted": {"type": "integer"}, "duplicates": {"type": "integer"},
                    "late": {"type": "integer"}, "quarantined": {"type": "integer"}}}}}},
    }
