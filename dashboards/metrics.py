"""Prometheus text for /metrics: the dashboard's own latency, and the fleet's counters.

Hand-written exposition (format 0.0.4) instead of a client library: a handful of
counters and one histogram per route, recorded by a plain ASGI middleware that adds
well under a microsecond-scale dict update per request.
"""

from __future__ import annotations

import bisect
import time
from collections import defaultdict

from starlette.types import ASGIApp, Message, Receive, Scope, Send

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class RequestStats:
    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, int], int] = defaultdict(int)
        self.hist: dict[str, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self.sums: dict[str, float] = defaultdict(float)
        self.sse_clients = 0

    def record(self, route: str, method: str, status: int, seconds: float) -> None:
        self.counts[(route, method, status)] += 1
        self.hist[route][bisect.bisect_left(BUCKETS, seconds)] += 1
        self.sums[route] += seconds


class TimingMiddleware:
    """Counts and times every HTTP request by route template (not raw path: ids stay out)."""

    def __init__(self, app: ASGIApp, stats: RequestStats) -> None:
        self.app, self.stats = app, stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            if not route.endswith("/stream"):  # a stream's lifetime is not a latency
                self.stats.record(route, scope["method"], status, time.perf_counter() - started)


def _labels(**kv: object) -> str:
    body = ",".join(f'{k}="{str(v).replace(chr(92), "/").replace(chr(34), chr(39))}"'
                    for k, v in kv.items())
    return "{" + body + "}"


def render(requests: RequestStats, fleet: dict | None) -> str:
    lines = [
        "# HELP auth_dashboard_requests_total HTTP requests by route, method and status.",
        "# TYPE auth_dashboard_requests_total counter",
    ]
    for (route, method, status), n in sorted(requests.counts.items()):
        lines.append(f"auth_dashboard_requests_total{_labels(route=route, method=method, status=status)} {n}")
    lines += ["# HELP auth_dashboard_request_seconds Request latency by route.",
              "# TYPE auth_dashboard_request_seconds histogram"]
    for route, buckets in sorted(requests.hist.items()):
        acc = 0
        for le, n in zip((*BUCKETS, "+Inf"), buckets, strict=True):
            acc += n
            lines.append(f"auth_dashboard_request_seconds_bucket{_labels(route=route, le=le)} {acc}")
        lines.append(f"auth_dashboard_request_seconds_sum{_labels(route=route)} {requests.sums[route]:.6f}")
        lines.append(f"auth_dashboard_request_seconds_count{_labels(route=route)} {acc}")
    lines += ["# HELP auth_dashboard_sse_clients Open live streams.",
              "# TYPE auth_dashboard_sse_clients gauge",
              f"auth_dashboard_sse_clients {requests.sse_clients}"]
    if fleet:
        lines += _fleet(fleet)
    return "\n".join(lines) + "\n"


def _fleet(fleet: dict) -> list[str]:
    out = []
    per = fleet["utilities"]
    for name, help_text in (("accepted", "Readings counted in windows."),
                            ("duplicates", "Exact resends dropped."),
                            ("late", "Readings for final windows, routed to the late topic."),
                            ("quarantined", "Malformed messages quarantined.")):
        out += [f"# HELP auth_readings_{name}_total {help_text}",
                f"# TYPE auth_readings_{name}_total counter"]
        out += [f"auth_readings_{name}_total{_labels(utility=u)} {v[name]}" for u, v in per.items()]
    gauges = (("watermark_seconds", "watermark", "Event-time watermark (epoch s)."),
              ("newest_event_seconds", "newest", "Newest event time applied (epoch s)."),
              ("watermark_lag_seconds", "watermark_lag_s", "Wall clock minus watermark."),
              ("ingest_rate", "ingest_rate", "Readings consumed per second (10 s average)."),
              ("today_consumption", "today", "Consumption today (UTC, event time), in the unit."))
    for metric, key, help_text in gauges:
        out += [f"# HELP auth_{metric} {help_text}", f"# TYPE auth_{metric} gauge"]
        for u, v in per.items():
            value = v[key]["sum"] if key == "today" else v[key]
            if value is not None:
                out.append(f"auth_{metric}{_labels(utility=u)} {value}")
    out += ["# HELP auth_registry_meters Meters in the registry.",
            "# TYPE auth_registry_meters gauge", f"auth_registry_meters {fleet['meters']}"]
    if fleet.get("checkpoint_age_s") is not None:
        out += ["# HELP auth_checkpoint_age_seconds Seconds since the workers' last checkpoint.",
                "# TYPE auth_checkpoint_age_seconds gauge",
                f"auth_checkpoint_age_seconds {fleet['checkpoint_age_s']}"]
    return out
