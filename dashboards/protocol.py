"""uvicorn's httptools protocol with a header deadline, and one send per response.

uvicorn times out idle keep-alive connections but not a request whose headers never
finish: a client that connects and sends a byte now and then holds its connection (and
a slot of limit_concurrency) forever. Here every request's headers must be complete
within `header_timeout` seconds of the connection opening, or of the previous response
ending, and within MAX_HEADER bytes (httptools, unlike h11, sets no size limit);
otherwise the connection is closed (431 for the size).

uvicorn writes a response's status line and headers, then its body: two sends, and on
loopback two wake-ups of the client, for every answer. A write here waits for the next
one, or for the end of the loop's turn, so the two leave as one send (py-spy at 2x with
200 clients: a quarter of the serving loop's busy time was inside those sends; strace:
one send a response now, where there were two).

    uvicorn.Config(app, http=with_header_timeout(10.0), ...)
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEADER = 65536    # bytes received before a request's headers end (431 beyond)


class Coalesced:
    """A transport whose write is held until the next write (joined, sent at once) or the
    end of this turn of the loop; everything else is the transport's own."""

    __slots__ = ("_transport", "_loop", "_held", "_flush")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._flush: asyncio.Handle | None = None

    def write(self, data: bytes) -> None:
        if self._held is None:
            self._held = bytes(data)
            self._flush = self._loop.call_soon(self.flush)
            return
        held, self._held = self._held, None
        self._flush.cancel()  # type: ignore[union-attr]
        self._transport.write(held + data)

    def flush(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            self._flush.cancel()  # type: ignore[union-attr]
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> object:
        return getattr(self._transport, name)


class HeaderDeadline(HttpToolsProtocol):
    header_timeout: float = 10.0
    _deadline: asyncio.TimerHandle | None = None
    _header_bytes = 0

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.header_timeout, self._expired)

    def _disarm(self) -> None:
        self._header_bytes = 0
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(Coalesced(transport, self.loop))  # type: ignore[arg-type]
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        counting = self._deadline is not None     # headers were still coming
        super().data_received(data)
        if counting and self._deadline is not None and not self.transport.is_closing():
            self._header_bytes += len(data)       # ... and still are after this packet
            if self._header_bytes > MAX_HEADER:
                self._disarm()
                self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                                     b"content-length: 0\r\nconnection: close\r\n\r\n")
                self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()


def with_header_timeout(seconds: float) -> type[HeaderDeadline]:
    """The protocol class for uvicorn.Config(http=...), with this header deadline."""
    return type("HeaderDeadline", (HeaderDeadline,), {"header_timeout": float(seconds)})
