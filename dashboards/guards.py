"""ASGI guards in front of every route: body size and pace, cross-site POSTs, HSTS.

- BodyLimit: a body longer than `max_body` gets 413 before it is read (Content-Length is
  checked first; a chunked body is counted as it arrives and cut at the limit), and a
  body that stalls for `timeout` seconds between chunks gets 408. Nothing a handler reads
  (POST /login included) can be larger than the limit.
- SameOrigin: a POST (any method but GET/HEAD/OPTIONS) whose Origin is another site, or
  `null` without Sec-Fetch-Site: same-origin, or that a browser marks cross-site, gets 403: sign-in and
  sign-out cannot be forged from another page. Clients that send neither header (curl,
  scripts) are not browsers and cannot be made to forge anything.
- TransportSecurity: Strict-Transport-Security on every answer when the request came over
  TLS or the settings say a TLS proxy is in front (AUTH_DASHBOARD_BEHIND_TLS_PROXY).
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HSTS = (b"strict-transport-security", b"max-age=31536000")
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


async def refuse(scope: Scope, send: Send, status: int, message: str,
                 close: bool = False) -> None:
    """A short JSON error, sent from a guard (the app never saw the request)."""
    body = orjson.dumps({"error": message})
    headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store"),
               (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    def __init__(self, app: ASGIApp, max_body: int, timeout: float) -> None:
        self.app, self.max_body, self.timeout = app, max_body, timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await refuse(scope, send, 413, f"request body over {self.max_body} bytes",
                         close=True)
            return
        seen, done, started, refused = 0, False, False, False

        async def stop(status: int, message: str) -> Message:
            """Answer now, and tell the app the client left (it then gives up reading)."""
            nonlocal refused, done
            refused = done = True
            if not started:
                await refuse(scope, send, status, message, close=True)
            return {"type": "http.disconnect"}

        async def receiving() -> Message:
            nonlocal seen, done
            if done:   # the body is read: what is left is the disconnect, however late
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.timeout)
            except TimeoutError:
                return await stop(408, "request body too slow")
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    return await stop(413, f"request body over {self.max_body} bytes")
                done = not message.get("more_body", False)
            else:
                done = True
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            if refused:     # the guard has answered; whatever the app says is dropped
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receiving, sending)
        except Exception:
            if not refused:
                raise


class SameOrigin:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS \
                and not same_origin(scope):
            await refuse(scope, send, 403, "cross-site request refused")
            return
        await self.app(scope, receive, send)


def same_origin(scope: Scope) -> bool:
    """Origin names this Host; or, with no Origin (or `null`, which a browser sends under
    Referrer-Policy: no-referrer), the browser's own Sec-Fetch-Site says same-origin."""
    origin, fetch_site = _header(scope, b"origin"), _header(scope, b"sec-fetch-site")
    if origin == "null":
        return fetch_site == "same-origin"
    if origin is not None:
        host = _header(scope, b"host") or ""
        return urlsplit(origin).netloc.lower() == host.lower() != ""
    return fetch_site in (None, "same-origin", "none")


class TransportSecurity:
    def __init__(self, app: ASGIApp, behind_tls_proxy: bool) -> None:
        self.app, self.always = app, behind_tls_proxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not (self.always or scope.get("scheme") == "https"):
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), HSTS]
            await send(message)

        await self.app(scope, receive, sending)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None
