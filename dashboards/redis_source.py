"""The live source: the Redis the workers checkpoint into, read-only, one round trip per query.

A household's summary is one pipeline: the registry hash and an HMGET of exactly the
windows the page shows (60 minutes + 24 hours per utility), all in the meter's
{service_id} slot. The event-time clock and the counters are refreshed by a background
poll (dashboards/poller.py), never on the request path. Keys follow the store's layout
(auth_kappa/state/redis_store.py) and the `auth:namespace` pointer, so a rebuild's
atomic switch is followed within a poll.
"""

from __future__ import annotations

import numpy as np
import redis.asyncio as aredis

from auth_kappa.state import codec
from auth_kappa.state.redis_store import POINTER
from auth_kappa.topology.schema import STATES, UTILITIES
from dashboards import registry
from dashboards.sources import Clock, Stats


class RedisSource:
    kind = "redis"

    def __init__(self, url: str, sizes: tuple[int, ...], group: str,
                 namespace: str | None = None, max_connections: int = 32,
                 registry_prefix: str = registry.PREFIX) -> None:
        self.sizes, self.group, self._pinned = tuple(sorted(sizes)), group, namespace
        self.registry_prefix = registry_prefix
        self._index = registry.index_key(registry_prefix)
        pool = aredis.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=5, socket_connect_timeout=5,
            socket_timeout=10)
        self.client = aredis.Redis(connection_pool=pool)
        self.namespace = namespace or "v1"
        self._clock = Clock(namespace=self.namespace)
        self._stats = Stats.from_flat({})

    # ---- keys (every caller passes validated ids; see dashboards/validation.py)
    @property
    def prefix(self) -> str:
        return f"auth:{self.namespace}:"

    def meter_key(self, service_id: str, utility: str, size: int) -> str:
        return f"{self.prefix}m:{{{service_id}}}:{utility}:{size}"

    def state_key(self, utility: str, size: int) -> str:
        return f"{self.prefix}s:{utility}:{size}"

    # ---- polled (background): clock and counters
    async def refresh(self) -> None:
        """Namespace pointer, partition highs and the stats hash: one round trip (two after a
        namespace switch)."""
        for _ in range(2):
            pipe = self.client.pipeline(transaction=False)
            pipe.get(POINTER)
            pipe.hgetall(f"{self.prefix}highs:{self.group}")
            pipe.hgetall(f"{self.prefix}stats:{self.group}")
            pointer, highs, stats = await pipe.execute()
            ns = self._pinned or (pointer.decode() if pointer else "v1")
            if ns == self.namespace:
                break
            self.namespace = ns
        newest: dict[str, int] = {}
        lowest: dict[str, int] = {}
        for name, value in highs.items():
            utility = name.decode().split(":")[0]
            if utility not in UTILITIES:
                continue
            v = int(value)
            newest[utility] = max(newest.get(utility, v), v)
            lowest[utility] = min(lowest.get(utility, v), v)
        flat = {k.decode(): float(v) for k, v in stats.items()}
        self._clock = Clock(newest, lowest, flat.get("checkpoint_ts"), self.namespace)
        self._stats = Stats.from_flat(flat)

    async def clock(self) -> Clock:
        return self._clock

    async def stats(self) -> Stats:
        return self._stats

    # ---- request path
    async def meter(self, service_id: str, reads: list[tuple[str, int, list[int]]]
                    ) -> tuple[dict[str, str] | None, list[np.ndarray]]:
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(registry.meter_key(service_id, self.registry_prefix))
        for utility, size, starts in reads:
            pipe.hmget(self.meter_key(service_id, utility, size), starts)
        info, *values = await pipe.execute()
        entry = {k.decode(): v.decode() for k, v in info.items()} if info else None
        return entry, [codec.decode_values(v, 0) for v in values]

    async def states(self, utility: str, size: int, starts: list[int]) -> np.ndarray:
        if not starts:
            return codec.decode_values([], 0).reshape(len(STATES), 0)
        fields = [f"{s}:{w}" for s in STATES for w in starts]
        raw = await self.client.hmget(self.state_key(utility, size), fields)
        return codec.decode_values(raw, 0).reshape(len(STATES), len(starts))

    async def search(self, text: str, limit: int) -> list[dict[str, str]]:
        lo, hi = b"[" + text.encode(), b"[" + text.encode() + b"\xff"
        members = await self.client.zrangebylex(self._index, lo, hi, 0, limit)
        sids = list(dict.fromkeys(m.decode().split(registry.SEP)[1] for m in members))
        pipe = self.client.pipeline(transaction=False)
        for sid in sids:
            pipe.hgetall(registry.meter_key(sid, self.registry_prefix))
        out = []
        for sid, info in zip(sids, await pipe.execute(), strict=True):
            if info:
                out.append({"service_id": sid, **{k.decode(): v.decode() for k, v in info.items()}})
        return out

    async def registry_size(self) -> int:
        return int(await self.client.zcard(self._index)) // 2

    async def ping(self) -> bool:
        try:
            return bool(await self.client.ping())
        except Exception:  # noqa: BLE001 - healthz reports any failure as "down"
            return False

    async def close(self) -> None:
        await self.client.aclose()
