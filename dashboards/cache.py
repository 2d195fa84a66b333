"""A tiny TTL cache with single flight: concurrent askers of one key share one Redis read.

Window values change only when a worker checkpoints (about once a second), so a fleet
map computed 300 ms ago is still the current answer; 200 operators on the fleet page
then cost one HMGET per second, not 200.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any


class TTLCache:
    def __init__(self, max_items: int = 10_000) -> None:
        self.max_items = max_items
        self._items: dict[Hashable, tuple[float, asyncio.Future]] = {}
        self.hits = self.misses = 0

    async def get(self, key: Hashable, ttl: float, make: Callable[[], Awaitable[Any]]) -> Any:
        now = time.monotonic()
        hit = self._items.get(key)
        if hit is not None and hit[0] > now:
            self.hits += 1
            return await asyncio.shield(hit[1])
        self.misses += 1
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._items[key] = (now + ttl, fut)
        if len(self._items) > self.max_items:
            self._evict(now)
        try:
            value = await make()
        except BaseException as exc:
            self._items.pop(key, None)
            fut.set_exception(exc)
            fut.exception()  # retrieved: a failure nobody else awaited is not "never retrieved"
            raise
        fut.set_result(value)
        return value

    def _evict(self, now: float) -> None:
        for key in [k for k, (until, _) in self._items.items() if until <= now]:
            del self._items[key]
        while len(self._items) > self.max_items:
            self._items.pop(next(iter(self._items)))
