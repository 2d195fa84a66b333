"""JSON API: every number the pages show, behind the same access rules as the pages.

Handlers validate first (dashboards/validation.py), authorise second (dashboards/auth.py),
then ask the cached queries (dashboards/queries.py). Errors are JSON {"error": ...}
with 400 (bad value), 401 (no credentials), 403 (wrong credentials), 404 (no such meter).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from dashboards import alert_queries, bill_queries, export, live, metrics, queries, validation
from dashboards.cache import retrieved
from dashboards.context import Context, ctx

NO_STORE = {"Cache-Control": "no-store"}


class Json(JSONResponse):
    """Compact JSON, never cached by browsers or proxies (it is per-user and live).

    orjson: the stdlib encoder took ~0.1 ms of a page's ~0.6 ms of CPU."""

    def render(self, content: object) -> bytes:
        return orjson.dumps(content)


def ok(data: object) -> Json:
    return Json(data, headers=NO_STORE)


class NotFound(Exception):
    pass


# ---- households (operator token, or the meter's signed link)
async def summary_of(c: Context, sid: str, rng: str) -> orjson.Fragment:
    """A meter's summary as rendered JSON. The cache holds thousands of these: as
    nested dicts and lists they made every full garbage collection walk millions of
    references (~100 ms with the whole server stopped: the p99); as bytes they are one
    untracked object each, and a hit is not re-encoded. A meter held in memory (the
    change stream's view) is cached per change notice, so no answer is older than it."""
    version = getattr(c.reader, "version", None)
    data = await c.cache.get(("meter", sid, rng, version and version(sid)), c.settings.meter_ttl,
                             lambda: _rendered(queries.meter_summary(c.reader, sid, rng)),
                             c.settings.stale)
    if data is None:
        raise NotFound(f"no meter {sid} in the registry or the windows")
    return data


async def _rendered(query: Awaitable[object | None]) -> orjson.Fragment | None:
    data = await query
    return None if data is None else orjson.Fragment(orjson.dumps(data))


async def meter_summary(request: Request) -> Response:
    validation.only(request.query_params, {"range", "sig"})
    sid = validation.service_id(request.path_params["service_id"])
    rng = validation.time_range(request.query_params.get("range"))
    c = ctx(request)
    c.access.require_meter(request, sid)
    return ok(await summary_of(c, sid, rng))


async def meter_windows(request: Request) -> Response:
    q = request.query_params
    validation.only(q, {"utility", "window", "from", "to", "sig", "format"})
    fmt = validation.output_format(q.get("format"))
    c = ctx(request)
    sid = validation.service_id(request.path_params["service_id"])
    utility = validation.utility(q.get("utility"))
    size = validation.window(q.get("window"), c.reader.sizes)
    start, end = validation.epoch(q.get("from"), "from"), validation.epoch(q.get("to"), "to")
    c.access.require_meter(request, sid)
    clock = (await c.reader.clock()).newest.get(utility)
    if clock is None:
        clock = end or start or 0
    first, stop = validation.span(start, end, size, clock)
    data = await queries.meter_windows(c.reader, sid, utility, size, first, stop)
    return export.response(*export.meter_windows(data)) if fmt == "csv" else ok(data)


async def meter_stream(request: Request) -> Response:
    validation.only(request.query_params, {"range", "sig"})
    sid = validation.service_id(request.path_params["service_id"])
    rng = validation.time_range(request.query_params.get("range"))
    c = ctx(request)
    role = c.access.require_meter(request, sid)
    await summary_of(c, sid, rng)  # 404 before the stream starts, not inside it
    link = None if role == "operator" else "sig:" + request.query_params["sig"]
    slot = _reserve_stream(c, request, link)
    return live.stream(lambda: _summary_event(c, sid, rng), c.settings.sse_interval,
                       c.settings.sse_max_age, slot, _changed(c))


ALERTS_WAIT = 0.05   # s a meter stream's summary waits for its alerts


async def _summary_event(c: Context, sid: str, rng: str) -> dict:
    """The summary, and the alerts when they are at hand: an alerts snapshot being read
    from Redis must not hold back new windows (they go now; the alerts in a later look,
    the read going on meanwhile)."""
    alerts = asyncio.ensure_future(meter_alerts_of(c, sid))
    out = {"summary": await summary_of(c, sid, rng)}
    done, _ = await asyncio.wait({alerts}, timeout=ALERTS_WAIT)
    if done:
        out["alerts"] = alerts.result()
    else:
        alerts.add_done_callback(retrieved)
    return out


# ---- alerts (auth_kappa/insights)
async def alerts_snapshot(c: Context) -> alert_queries.Snapshot:
    """Every alert held, read once per alerts_ttl whoever asks (households and fleet)."""
    return await c.cache.get(("alerts",), c.settings.alerts_ttl,
                             lambda: alert_queries.snapshot(c.reader, c.alerts),
                             c.settings.stale)


async def meter_alerts_of(c: Context, sid: str) -> dict:
    """A meter's alerts; a meter nobody knows simply has none (its page may still show
    windows, so this never answers 404)."""
    snap = await alerts_snapshot(c)
    owner = snap.owners.get(sid) if sid in snap.by_meter else \
        (await c.reader.owners([sid]))[sid]
    return await alert_queries.meter_alerts(c.reader, snap, sid, owner)


async def meter_alerts(request: Request) -> Response:
    validation.only(request.query_params, {"sig"})
    sid = validation.service_id(request.path_params["service_id"])
    c = ctx(request)
    c.access.require_meter(request, sid)
    return ok(await meter_alerts_of(c, sid))


async def meter_bill(request: Request) -> Response:
    """The household's bill to date, days, estimates and similar homes (bill_queries)."""
    q = request.query_params
    validation.only(q, {"sig", "month"})
    sid = validation.service_id(request.path_params["service_id"])
    month = validation.month(q.get("month"))
    c = ctx(request)
    c.access.require_meter(request, sid)
    return ok(await bill_queries.meter_bill(c.reader, c.tariff, await alerts_snapshot(c),
                                            sid, month))


async def fleet_alerts_of(c: Context) -> dict:
    async def make() -> dict:
        return await alert_queries.fleet_alerts(c.reader, await alerts_snapshot(c))
    return await c.cache.get(("fleet-alerts",), c.settings.alerts_ttl, make, c.settings.stale)


async def fleet_alerts(request: Request) -> Response:
    validation.only(request.query_params, set())
    c = ctx(request)
    c.access.require_operator(request)
    return ok(await fleet_alerts_of(c))


async def meter_search(request: Request) -> Response:
    q = request.query_params
    validation.only(q, {"q", "limit"})
    text, limit = validation.search_text(q.get("q")), validation.limit(q.get("limit"))
    c = ctx(request)
    c.access.require_operator(request)
    found = await c.reader.search(text, limit)
    # no link is signed here: "link" opens dashboards/links.mint, which signs one on click
    return ok({"q": text, "meters": [{**queries.meter_info(m),
                                      "link": f"/household/{m['service_id']}/link"}
                                     for m in found]})


# ---- fleet (operator token)
def _fleet_version(c: Context) -> int | None:
    """The change notice the fleet's windows in memory are as of: a cache key, so a
    fleet answer is never older than memory (None: read from Redis, cached 1 s)."""
    version = getattr(c.reader, "fleet_version", None)
    return version and version()


async def fleet_summary_of(c: Context) -> dict:
    return await c.cache.get(("fleet", _fleet_version(c)), c.settings.fleet_ttl,
                             lambda: queries.fleet_summary(c.reader, c.poller.rate.rates()),
                             c.settings.stale)


async def fleet_states_of(c: Context, utility: str, rng: str) -> dict:
    return await c.cache.get(("states", utility, rng, _fleet_version(c)), c.settings.fleet_ttl,
                             lambda: queries.fleet_states(c.reader, utility, rng),
                             c.settings.stale)


async def fleet_summary(request: Request) -> Response:
    validation.only(request.query_params, {"format"})
    fmt = validation.output_format(request.query_params.get("format"))
    c = ctx(request)
    c.access.require_operator(request)
    data = await fleet_summary_of(c)
    return export.response(*export.fleet_summary(data)) if fmt == "csv" else ok(data)


def _fleet_query(request: Request, extra: frozenset[str] = frozenset()):
    """Validated utility and range of a fleet request, after the operator check."""
    q = request.query_params
    validation.only(q, {"utility", "range", *extra})
    utility = validation.utility(q.get("utility"), "electricity")
    rng = validation.time_range(q.get("range"))
    c = ctx(request)
    c.access.require_operator(request)
    return c, utility, rng


async def fleet_states(request: Request) -> Response:
    c, utility, rng = _fleet_query(request, frozenset({"format"}))
    fmt = validation.output_format(request.query_params.get("format"))
    data = await fleet_states_of(c, utility, rng)
    return export.response(*export.fleet_states(data)) if fmt == "csv" else ok(data)


async def fleet_stream(request: Request) -> Response:
    c, utility, rng = _fleet_query(request)
    slot = _reserve_stream(c, request, None)

    async def produce() -> dict:
        return {"summary": await fleet_summary_of(c),
                "states": await fleet_states_of(c, utility, rng),
                "alerts": await fleet_alerts_of(c)}

    return live.stream(produce, c.settings.sse_interval, c.settings.sse_max_age, slot,
                       _changed(c))


def _changed(c: Context) -> live.Waiter | None:
    """What a stream waits on between looks: the next change notice (or its interval)."""
    changes = getattr(c.reader, "changes", None)
    return None if changes is None else changes.wait


def _reserve_stream(c: Context, request: Request, link: str | None) -> live.Slot:
    """A stream slot for this client and link (None: the operator's, per client only);
    the last thing before the response, so nothing can fail while it is held unused."""
    client = request.client.host if request.client else "?"
    return c.streams.reserve(client, link, operator=link is None)


Busy, TooMany = live.Busy, live.TooMany


# ---- operations
async def healthz(request: Request) -> Response:
    c = ctx(request)
    up = await c.reader.ping()
    body = {"status": "ok" if up and c.poller.healthy else "degraded", "source": c.reader.kind,
            "store": "up" if up else "down"}
    return Json(body, status_code=200 if up else 503, headers=NO_STORE)


async def prometheus(request: Request) -> Response:
    c = ctx(request)
    c.access.require_operator(request)
    fleet = await fleet_summary_of(c)
    text = metrics.render(c.requests, fleet)
    if hasattr(c.reader, "hedged"):
        text += ("# HELP auth_dashboard_hedged_reads_total Household reads also sent to the "
                 "primary because the replica was slow.\n"
                 "# TYPE auth_dashboard_hedged_reads_total counter\n"
                 f"auth_dashboard_hedged_reads_total {c.reader.hedged}\n")
    if hasattr(c.reader, "rerouted"):
        text += ("# HELP auth_dashboard_rerouted_reads_total Redis Cluster reads sent again "
                 "through redis-py's cluster pipeline after a redirection (a stale slot map).\n"
                 "# TYPE auth_dashboard_rerouted_reads_total counter\n"
                 f"auth_dashboard_rerouted_reads_total {c.reader.rerouted}\n")
    changes = getattr(c.reader, "changes", None)
    if changes is not None:
        text += "".join(
            f"# HELP auth_dashboard_view_{name} {about}\n"
            f"# TYPE auth_dashboard_view_{name} {kind}\n"
            f"auth_dashboard_view_{name} {value}\n" for name, kind, value, about in (
                ("meters", "gauge", len(changes.view), "Meters held in memory, kept "
                 "current by the change stream."),
                ("hits_total", "counter", changes.hits, "Household reads answered from "
                 "memory."),
                ("loads_total", "counter", changes.loads, "Meters read in from Redis (a "
                 "cold miss)."),
                ("resets_total", "counter", changes.resets, "Times the view started over "
                 "(missed notices, a namespace switch, a lost connection)."),
                ("reloaded_total", "counter", changes.reloaded, "Meters read in again, in "
                 "the background, after the view started over."),
                ("notices_total", "counter", changes.notices, "Checkpoint notices applied."),
                ("notice_age_seconds_total", "counter", round(changes.age_sum, 3),
                 "Sum over notices of checkpoint-to-view time (the stream id's clock)."),
                ("notice_age_seconds_max", "gauge", round(changes.age_max, 3),
                 "The longest checkpoint-to-view time of a notice so far.")))
    return PlainTextResponse(text, headers=NO_STORE,
                             media_type="text/plain; version=0.0.4")
