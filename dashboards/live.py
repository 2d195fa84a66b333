"""Server-Sent Events: the pages update without reloading, from the same cached queries.

Each stream re-asks its query every `interval` seconds, or as soon as a checkpoint's
change notice is in (dashboards/changes.py), and sends an event only when the answer
changed; the TTL cache makes N viewers of one meter (or of the fleet map)
cost one Redis read per interval. A comment line every 15 s keeps proxies from closing
an idle stream; a stream ends after `max_age` seconds and EventSource reconnects, which
re-checks the credentials.

Streams are capped three ways (Streams.reserve): in all, per client address and per link
(one household's signed link, or one operator session), so one link opening its stream
thousands of times gets 429 while other households and the fleet page still stream. A
slot is taken before the check can be passed by anyone else (no await between them) and
given back when the response ends, however it ends.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from dashboards.metrics import RequestStats

KEEPALIVE = 15.0
PUSH_GAP = 0.2        # s: a stream woken by change notices looks at most 5 times a second
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}

Producer = Callable[[], Awaitable[dict[str, object]]]
# wait(timeout, since): returns at once if something changed after `since` (monotonic s),
# else on the next change, or after `timeout` s
Waiter = Callable[[float, float], Awaitable[None]]


class Busy(Exception):
    """503: the server's streams are all taken."""


class TooMany(Exception):
    """429: this client address or this link has all the streams it may have."""


class Slot:
    """One reserved stream; release() is idempotent."""

    def __init__(self, streams: Streams, client: str, link: str | None) -> None:
        self.streams, self.client, self.link, self.held = streams, client, link, True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.streams._drop(self)


class Streams:
    """Live stream counts: in all, per client address, per link."""

    def __init__(self, stats: RequestStats, most: int, per_client: int, per_link: int) -> None:
        self.stats, self.most, self.per_client, self.per_link = stats, most, per_client, per_link
        self.clients: Counter[str] = Counter()
        self.links: Counter[str] = Counter()

    def reserve(self, client: str, link: str | None, operator: bool = False) -> Slot:
        """Take a slot now (synchronously: no other request runs between check and count).
        An operator's stream is not refused by the global cap (households cannot starve
        the fleet page), only by its own per-client and per-session caps."""
        if not operator and self.stats.sse_clients >= self.most:
            raise Busy("too many live streams; retry later")
        if self.clients[client] >= self.per_client:
            raise TooMany(f"at most {self.per_client} live streams per client address")
        if link is not None and self.links[link] >= self.per_link:
            raise TooMany(f"at most {self.per_link} live streams per link; close a tab")
        self.stats.sse_clients += 1
        self.clients[client] += 1
        if link is not None:
            self.links[link] += 1
        return Slot(self, client, link)

    def _drop(self, slot: Slot) -> None:
        self.stats.sse_clients -= 1
        for counter, key in ((self.clients, slot.client), (self.links, slot.link)):
            if key is not None:
                counter[key] -= 1
                if counter[key] <= 0:
                    del counter[key]


class _SlotStream(StreamingResponse):
    """Gives its slot back when the response ends: sent, cancelled or never started."""

    def __init__(self, content: AsyncIterator[str], slot: Slot) -> None:
        super().__init__(content, media_type="text/event-stream", headers=HEADERS)
        self.slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.slot.release()


async def _events(produce: Producer, interval: float, max_age: float,
                  wait: Waiter | None = None) -> AsyncIterator[str]:
    last: dict[str, str] = {}
    started = quiet_since = time.monotonic()
    yield "retry: 2000\n\n"
    while time.monotonic() - started < max_age:
        looked = time.monotonic()
        for name, payload in (await produce()).items():
            text = orjson.dumps(payload).decode()
            if last.get(name) != text:
                last[name] = text
                quiet_since = time.monotonic()
                yield f"event: {name}\ndata: {text}\n\n"
        if time.monotonic() - quiet_since >= KEEPALIVE:
            quiet_since = time.monotonic()
            yield ": keep-alive\n\n"
        # a client that leaves cancels this generator (StreamingResponse listens for it)
        if wait is None:
            await asyncio.sleep(interval)
        else:   # checkpoints land every few 100 ms per partition: not an event each
            await asyncio.sleep(max(0.0, looked + PUSH_GAP - time.monotonic()))
            await wait(interval, looked)


def stream(produce: Producer, interval: float, max_age: float, slot: Slot,
           wait: Waiter | None = None) -> StreamingResponse:
    """The event stream of `produce`, holding `slot` (from Streams.reserve) while it runs;
    `wait` (the change stream's) wakes it as soon as new windows are in, not an interval
    later."""
    return _SlotStream(_events(produce, interval, max_age, wait), slot)
