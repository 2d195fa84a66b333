"""The Starlette app: routes, error mapping, security headers, lifespan of the poller.

    app = create_app(Context(reader, Access.from_env()))
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dashboards import api, links, pages
from dashboards.auth import Denied
from dashboards.context import Context
from dashboards.guards import BodyLimit, SameOrigin, TransportSecurity
from dashboards.metrics import TimingMiddleware
from dashboards.openapi import spec
from dashboards.validation import Invalid

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),   # signed links must not leak through Referer
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, sending)


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith(("/api/", "/metrics", "/healthz", "/openapi"))


def _error(request: Request, status: int, message: str) -> Response:
    if _wants_html(request):
        return pages.error_page(status, message)
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="auth-kappa"'
    return api.Json({"error": message}, status_code=status, headers=headers)


async def _invalid(request: Request, exc: Exception) -> Response:
    return _error(request, 400, str(exc))


async def _denied(request: Request, exc: Exception) -> Response:
    return _error(request, exc.status, str(exc))  # type: ignore[attr-defined]


async def _not_found(request: Request, exc: Exception) -> Response:
    return _error(request, 404, str(exc) or "not found")


async def _busy(request: Request, exc: Exception) -> Response:
    return _error(request, 503, str(exc))


async def _too_many(request: Request, exc: Exception) -> Response:
    response = _error(request, 429, str(exc))
    response.headers["Retry-After"] = "30"
    return response


async def _http(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    return _error(request, status, getattr(exc, "detail", "") or "error")


async def openapi(request: Request) -> Response:
    return api.Json(spec(request.app.routes))


def routes() -> list:
    return [  # the hot API routes first: Starlette tries routes in order
        Route("/api/meters/{service_id}", api.meter_summary),
        Route("/api/fleet/states", api.fleet_states),
        Route("/api/fleet/summary", api.fleet_summary),
        Route("/", pages.index),
        Route("/login", pages.login_form, methods=["GET"]),
        Route("/login", pages.login, methods=["POST"]),
        Route("/logout", pages.logout, methods=["POST"]),
        Route("/fleet", pages.fleet),
        Route("/household", pages.household_finder),
        Route("/household/{service_id}", pages.household),
        Route("/household/{service_id}/link", links.mint),
        Route("/docs", pages.docs),
        Route("/openapi.json", openapi),
        Route("/healthz", api.healthz),
        Route("/metrics", api.prometheus),
        Route("/api/meters", api.meter_search),
        Route("/api/meters/{service_id}/windows", api.meter_windows),
        Route("/api/meters/{service_id}/stream", api.meter_stream),
        Route("/api/meters/{service_id}/alerts", api.meter_alerts),
        Route("/api/meters/{service_id}/bill", api.meter_bill),
        Route("/api/fleet/alerts", api.fleet_alerts),
        Route("/api/fleet/stream", api.fleet_stream),
        Mount("/static", StaticFiles(packages=[("dashboards", "static")]), name="static"),
    ]


def create_app(context: Context, extra_routes: list | None = None) -> ASGIApp:
    """The app; extra_routes lets a benchmark mount its baseline next to the real handlers."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await context.poller.start()
        gc.freeze()   # what start-up made lives as long as the server: keep it out of GC scans
        try:
            yield
        finally:
            await context.poller.stop()
            await context.reader.close()

    handlers = {Invalid: _invalid, Denied: _denied, api.NotFound: _not_found, api.Busy: _busy,
                api.TooMany: _too_many, HTTPException: _http}
    app = Starlette(routes=[*(extra_routes or []), *routes()], lifespan=lifespan,
                    exception_handlers=handlers)
    app.state.ctx = context
    s = context.settings
    guarded = SameOrigin(TrustedHostMiddleware(app, allowed_hosts=list(s.allowed_hosts)))
    guarded = BodyLimit(TransportSecurity(guarded, s.behind_tls_proxy), s.max_body,
                        s.body_timeout)
    return TimingMiddleware(SecurityHeaders(guarded), context.requests)
