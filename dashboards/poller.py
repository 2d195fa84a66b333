"""Background refresh of the clock and counters, and the ingest rate derived from them.

One cheap Redis round trip per interval keeps the request path free of clock reads,
and samples of the workers' running counters give readings/s without the workers
having to publish a rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque

from auth_kappa.topology.schema import UTILITIES
from dashboards.readers import COUNTERS, Reader, Stats

log = logging.getLogger("dashboards")


class RateMeter:
    """Readings consumed per second per utility, over the last `window` seconds of samples."""

    def __init__(self, window: float = 10.0) -> None:
        self.window = window
        self._samples: deque[tuple[float, dict[str, int]]] = deque()

    def observe(self, t: float, stats: Stats) -> None:
        totals = {u: sum(stats.get(n, u) for n in COUNTERS) for u in UTILITIES}
        self._samples.append((t, totals))
        while len(self._samples) > 2 and self._samples[1][0] <= t - self.window:
            self._samples.popleft()

    def rates(self) -> dict[str, float | None]:
        if len(self._samples) < 2:
            return dict.fromkeys(UTILITIES)
        (t0, a), (t1, b) = self._samples[0], self._samples[-1]
        if t1 - t0 <= 0:
            return dict.fromkeys(UTILITIES)
        return {u: round(max(0, b[u] - a[u]) / (t1 - t0), 1) for u in UTILITIES}


class Poller:
    def __init__(self, reader: Reader, interval: float = 1.0) -> None:
        self.reader, self.interval = reader, interval
        self.rate = RateMeter()
        self.healthy = False
        self._task: asyncio.Task | None = None

    async def poll_once(self) -> None:
        try:
            await self.reader.refresh()
            self.rate.observe(time.monotonic(), await self.reader.stats())
            self.healthy = True
        except Exception as exc:  # noqa: BLE001 - keep serving the last values; healthz says so
            if self.healthy:
                log.warning("dashboard: refresh failed: %s", exc)
            self.healthy = False

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.poll_once()

    async def start(self) -> None:
        await self.poll_once()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
