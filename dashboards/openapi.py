"""The OpenAPI 3.1 document served at /openapi.json, written by hand next to the handlers.

A test checks that every /api route of the app appears here and nothing else does.
"""

from __future__ import annotations

from functools import cache

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


@cache
def spec() -> dict:
    operator = [{"operatorToken": []}]
    meter = [{"operatorToken": []}, {"householdSignature": []}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "AUTH-Kappa dashboard API", "version": "1",
                 "description": "Window values of the one stream topology, read-only. Times "
                                "are epoch seconds (integers), event time; from/to also take "
                                "ISO 8601 with an offset. A meter's 'today' is the local day "
                                "(its state's zone) of its newest reading; the fleet's is the "
                                "UTC day. format=csv gives the same rows as a download."},
        "paths": {
            "/api/meters": {"get": {
                "summary": "Find meters by name or service_id prefix (operator)",
                "security": operator,
                "parameters": [{"name": "q", "in": "query", "required": True,
                                "schema": {"type": "string", "maxLength": 64}},
                               {"name": "limit", "in": "query", "required": False,
                                "schema": {"type": "integer", "minimum": 1, "maximum": 50}}],
                "responses": {"200": _json("Search"), **_OP_ERRS}}},
            "/api/meters/{service_id}": {"get": {
                "summary": "One meter's three cards: current window, today, last hour or day",
                "security": meter, "parameters": [_SID, _RANGE, _SIG],
                "responses": {"200": _json("MeterSummary"), **_METER_ERRS}}},
            "/api/meters/{service_id}/windows": {"get": {
                "summary": "One meter's stored windows in a time range",
                "security": meter,
                "parameters": [_SID, {**_UTILITY, "required": True},
                               {"name": "window", "in": "query", "required": False,
                                "schema": {"type": "string", "examples": ["1m", "1h"]}},
                               {"name": "from", "in": "query", "required": False, **_TIME},
                               {"name": "to", "in": "query", "required": False, **_TIME},
                               _SIG, _FORMAT],
                "responses": {"200": _json_or_csv("MeterWindows"), **_METER_ERRS}}},
            "/api/meters/{service_id}/stream": {"get": {
                "summary": "Live updates of the summary and alerts (SSE, events 'summary' "
                           "and 'alerts')",
                "security": meter, "parameters": [_SID, _RANGE, _SIG],
                "responses": {"200": _sse("event: summary, data: MeterSummary; event: "
                                          "alerts, data: MeterAlerts"),
                              **_METER_ERRS, "429": _ERR, "503": _ERR}}},
            "/api/meters/{service_id}/alerts": {"get": {
                "summary": "One meter's open alerts and its latest closed ones, per utility, "
                           "each also in words (local time, the page's units)",
                "security": meter, "parameters": [_SID, _SIG],
                "responses": {"200": _json("MeterAlerts"), **_OP_ERRS}}},
            "/api/fleet/alerts": {"get": {
                "summary": "Alert counts by kind and state, and the open alerts with links "
                           "to their households (operator)",
                "security": operator,
                "responses": {"200": _json("FleetAlerts"), **_OP_ERRS}}},
            "/api/fleet/summary": {"get": {
                "summary": "Fleet totals today, counters, ingest rate, watermark lag (operator)",
                "security": operator, "parameters": [_FORMAT],
                "responses": {"200": _json_or_csv("FleetSummary"), **_OP_ERRS}}},
            "/api/fleet/states": {"get": {
                "summary": "Per-state totals and the top 10 (the choropleth) (operator)",
                "security": operator, "parameters": [_UTILITY, _RANGE, _FORMAT],
                "responses": {"200": _json_or_csv("FleetStates"), **_OP_ERRS}}},
            "/api/fleet/stream": {"get": {
                "summary": "Live fleet updates (SSE, events 'summary', 'states' and "
                           "'alerts')",
                "security": operator, "parameters": [_UTILITY, _RANGE],
                "responses": {"200": _sse("events summary, states and alerts"), **_OP_ERRS,
                              "429": _ERR, "503": _ERR}}},
            "/healthz": {"get": {"summary": "Liveness and store reachability (public)",
                                 "responses": {"200": _json("Health"), "503": _json("Health")}}},
            "/metrics": {"get": {"summary": "Prometheus text exposition (operator)",
                                 "security": operator,
                                 "responses": {"200": {"description": "text/plain 0.0.4"},
                                               "401": _ERR, "403": _ERR}}},
        },
        "components": {
            "securitySchemes": {
                "operatorToken": {"type": "http", "scheme": "bearer",
                                  "description": "AUTH_OPERATOR_TOKEN (or the login cookie)"},
                "householdSignature": {"type": "apiKey", "in": "query", "name": "sig",
                                       "description": "<expiry>.<HMAC of the service_id and "
                                                      "the expiry>; that meter only, until "
                                                      "the expiry (AUTH_DASHBOARD_LINK_TTL)"},
            },
            "schemas": {
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
                "MeterWindows": {"type": "object", "properties": {
                    "service_id": {"type": "string"}, "utility": {"enum": list(UTILITIES)},
                    "unit": {"type": "string"}, "size": {"type": "integer"},
                    "time_zone": {"type": "string"},
                    "from": {"type": "integer"}, "to": {"type": "integer"},
                    "windows": {"type": "array",
                                "items": {"$ref": "#/components/schemas/Window"}}}},
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
            },
        },
    }
