"""uvicorn's httptools protocol with a header deadline: slow-header clients are cut off.

uvicorn times out idle keep-alive connections but not a request whose headers never
finish: a client that connects and sends a byte now and then holds its connection (and
a slot of limit_concurrency) forever. Here every request's headers must be complete
within `header_timeout` seconds of the connection opening, or of the previous response
ending; otherwise the connection is closed.

    uvicorn.Config(app, http=with_header_timeout(10.0), ...)
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HeaderDeadline(HttpToolsProtocol):
    header_timeout: float = 10.0
    _deadline: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()


def with_header_timeout(seconds: float) -> type[HeaderDeadline]:
    """The protocol class for uvicorn.Config(http=...), with this header deadline."""
    return type("HeaderDeadline", (HeaderDeadline,), {"header_timeout": float(seconds)})
