"""A lean HTTP/1.1 keep-alive client for the load generator.

The load generator shares the cores with the dashboard it measures, so its own cost per
request is taken from the dashboard: aiohttp's client used about 0.6 ms of CPU per
request (0.24 cores at ~390 req/s), this protocol a fraction of that. One connection per
client, one request in flight on it, responses framed by Content-Length (the hot API
routes); anything else is an error, not a guess.
"""

from __future__ import annotations

import asyncio


class Connection(asyncio.Protocol):
    def __init__(self, host: str) -> None:
        self.host = host.encode()
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.need = -1            # body bytes still to come; -1 while reading the head
        self.status = 0
        self.waiter: asyncio.Future[int] | None = None

    @classmethod
    async def open(cls, base: str) -> Connection:
        """A connection to `base`, "http://host:port"."""
        host, port = base.removeprefix("http://").split(":")
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(lambda: cls(f"{host}:{port}"), host, int(port))
        return conn

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._done(ConnectionError(f"connection closed ({exc})"))

    async def get(self, path: str, headers: bytes = b"") -> int:
        """The response's status, once its whole body has arrived."""
        if self.transport is None:
            raise ConnectionError("connection closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(b"GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n"
                             % (path.encode(), self.host, headers))
        return await self.waiter

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.need < 0:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).lower()
            self.status = int(head[9:12])
            at = head.find(b"\r\ncontent-length:")
            if at < 0:
                self._done(ConnectionError("a response without Content-Length"))
                return
            stop = head.find(b"\r\n", at + 2)
            self.need = int(head[at + 17:stop if stop >= 0 else None])
            del self.buf[:end + 4]
        if len(self.buf) >= self.need:
            del self.buf[:self.need]
            self.need = -1
            self._done(None)

    def _done(self, exc: Exception | None) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            if exc is None:
                waiter.set_result(self.status)
            else:
                waiter.set_exception(exc)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
