"""Server-Sent Events: the pages update without reloading, from the same cached queries.

Each stream re-asks its query every `interval` seconds and sends an event only when
the answer changed; the TTL cache makes N viewers of one meter (or of the fleet map)
cost one Redis read per interval. A comment line every 15 s keeps proxies from closing
an idle stream; a stream ends after `max_age` seconds and EventSource reconnects, which
re-checks the credentials.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
from starlette.responses import StreamingResponse

from dashboards.metrics import RequestStats

KEEPALIVE = 15.0
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}

Producer = Callable[[], Awaitable[dict[str, object]]]


async def _events(produce: Producer, interval: float, max_age: float,
                  stats: RequestStats) -> AsyncIterator[str]:
    stats.sse_clients += 1
    try:
        last: dict[str, str] = {}
        started = quiet_since = time.monotonic()
        yield "retry: 2000\n\n"
        while time.monotonic() - started < max_age:
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
            await asyncio.sleep(interval)
    finally:
        stats.sse_clients -= 1


def stream(produce: Producer, interval: float, max_age: float,
           stats: RequestStats) -> StreamingResponse:
    return StreamingResponse(_events(produce, interval, max_age, stats),
                             media_type="text/event-stream", headers=HEADERS)
