"""A tiny TTL cache with single flight and stale-while-revalidate.

Window values change only when a worker checkpoints (about once a second), so a fleet
map computed 300 ms ago is still the current answer; 200 operators on the fleet page
then cost one read per second, not 200. When an entry expires, the next asker starts one
refresh in the background and everyone keeps getting the previous answer (for at most
`stale` seconds) until it lands: a Redis stalled by a large checkpoint transaction delays
the refresh, not the pages.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any


class TTLCache:
    """Entries: key -> (fresh until, stale until, future while loading else None, value).
    A loaded entry holds the value itself, not a Future: thousands of Futures living for
    seconds each were what the GC's older generations scanned (in a dashboard serving
    ~350 households a second: collections of 5-20 ms with the loop stopped), while a
    tuple of floats, None and a rendered answer is untracked by the first collection."""

    def __init__(self, max_items: int = 10_000) -> None:
        self.max_items = max_items
        self._items: dict[Hashable, tuple[float, float, asyncio.Future | None, Any]] = {}
        self._refreshing: dict[Hashable, asyncio.Task] = {}
        self.hits = self.misses = self.stale_hits = 0

    async def get(self, key: Hashable, ttl: float, make: Callable[[], Awaitable[Any]],
                  stale: float = 0.0) -> Any:
        now = time.monotonic()
        hit = self._items.get(key)
        if hit is not None:
            fresh, usable, fut, value = hit
            if fresh > now:
                self.hits += 1
                return value if fut is None else await asyncio.shield(fut)
            if usable > now and fut is None:
                self.stale_hits += 1
                if key not in self._refreshing:
                    task = asyncio.create_task(self._refresh(key, ttl, make, stale))
                    self._refreshing[key] = task
                return value
        self.misses += 1
        return await self._load(key, ttl, make, stale)

    async def _load(self, key: Hashable, ttl: float, make: Callable[[], Awaitable[Any]],
                    stale: float) -> Any:
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        now = time.monotonic()
        entry = (now + ttl, now + ttl + stale, fut, None)
        self._items[key] = entry
        if len(self._items) > self.max_items:
            self._evict(now)
        try:
            value = await make()
        except BaseException as exc:
            if self._items.get(key) is entry:
                del self._items[key]
            fut.set_exception(exc)
            fut.exception()  # retrieved: a failure nobody else awaited is not "never retrieved"
            raise
        fut.set_result(value)   # for those who asked while it loaded
        if self._items.get(key) is entry:
            self._items[key] = (entry[0], entry[1], None, value)
        return value

    async def _refresh(self, key: Hashable, ttl: float, make: Callable[[], Awaitable[Any]],
                       stale: float) -> None:
        try:
            value = await make()
        except Exception:  # noqa: BLE001 - keep serving the stale value; the next ask retries
            return
        finally:
            self._refreshing.pop(key, None)
        now = time.monotonic()
        self._items[key] = (now + ttl, now + ttl + stale, None, value)

    def _evict(self, now: float) -> None:
        for key in [k for k, (_, usable, *_) in self._items.items() if usable <= now]:
            del self._items[key]
        while len(self._items) > self.max_items:
            self._items.pop(next(iter(self._items)))


def retrieved(task: asyncio.Future) -> None:
    """A done callback for a task nobody awaits: its failure is not "never retrieved"."""
    if not task.cancelled():
        task.exception()
