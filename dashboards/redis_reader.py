"""The live source: the Redis the workers checkpoint into, read-only, one round trip per query.

A household's summary is one pipeline: the registry hash and an HMGET of exactly the
windows the page shows (60 minutes + 24 hours per utility), all in the meter's
{service_id} slot. The event-time clock and the counters are refreshed by a background
poll (dashboards/poller.py), never on the request path. Keys follow the store's layout
(auth_kappa/state/layout.py) and the configured pointer (AUTH_POINTER, default
`auth:namespace`), the same key the workers and replay follow, so a rebuild's atomic
switch is followed within a poll. On a Redis Cluster (AUTH_REDIS_CLUSTER=1) the keys are
tagged by source partition instead: dashboards/cluster_reader.py reads those.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import redis.asyncio as aredis

from auth_kappa.state import codec, resp
from auth_kappa.state.layout import (
    DEFAULT_NAMESPACE,
    Layout,
    day_records,
    followed,
    sketch_shares,
    watermarks_and_newest,
)
from auth_kappa.topology.schema import STATES, UTILITIES
from auth_kappa.topology.windows import is_final
from dashboards import registry
from dashboards.cache import retrieved
from dashboards.changes import Changes
from dashboards.fleet_view import FleetView
from dashboards.meter_view import MeterView, meter_key
from dashboards.queries import summary_windows
from dashboards.readers import Clock, Stats


class RedisReader:
    kind = "redis"
    cluster = False   # a Redis Cluster: dashboards/cluster_reader.py

    def __init__(self, url: str, sizes: tuple[int, ...], group: str,
                 namespace: str | None = None, *, pointer: str, max_connections: int = 32,
                 registry_prefix: str = registry.PREFIX, grace: float = 30.0,
                 replica_url: str | None = None, hedge_after: float = 0.01,
                 watch: int = 0, meter_keep: Mapping[int, int] | None = None,
                 state_keep: Mapping[int, int] | None = None) -> None:
        """`pointer` is config.pointer (AUTH_POINTER), required so no caller can fall back to
        a fixed key that a rebuild with another pointer never moves. `watch`: meters held
        in memory and kept current from the checkpoints' change stream (0: none, every
        household read goes to Redis; dashboards/changes.py), and the fleet's per-state
        windows with them; `meter_keep`, `state_keep`: the windows' retention per size
        (config.window_specs), so memory trims like Redis."""
        self.sizes, self.group, self._pinned = tuple(sorted(sizes)), group, namespace
        self.pointer = pointer   # config.pointer: the key a rebuild's switch sets
        self.registry_prefix = registry_prefix
        self._index = registry.index_key(registry_prefix)
        # with a replica, every read goes there (the primary is busy with checkpoints) and a
        # household read still unanswered after `hedge_after` s is also sent to the primary,
        # at most MAX_HEDGES at a time; the first answer wins (see _hedged)
        self.client = self._connect(replica_url or url, max_connections)
        self.primary = _client(url, MAX_HEDGES) if replica_url else None
        self.hedge_after = hedge_after
        self.hedged = self._hedging = 0
        self.keys = Layout(namespace or DEFAULT_NAMESPACE, group, self.cluster)
        self.grace = grace
        self._finals: dict[tuple[str, str, int], FinalCache] = {}
        self._clock = Clock(namespace=self.keys.namespace)
        self._stats = Stats.from_flat({})
        self._counts: dict[str, int] = getattr(self, "_counts", {})   # utility -> partitions
        self._owners: dict[str, tuple[float, dict[str, str] | None]] = {}
        self._polled: tuple[dict[str, int], dict[str, int], dict[str, float]] = ({}, {}, {})
        self._registered: int | None = None   # registry size, polled
        self.changes: Changes | None = None
        if watch > 0 and not self.cluster:   # a cluster has a stream per partition: not yet
            shown = summary_windows(self.sizes)   # the fleet pages show no more than these
            keep, skeep = meter_keep or {}, state_keep or {}
            rings = {size: (n + RING_SLACK, keep.get(size, 1 << 40)) for size, n in shown.items()}
            fleet = FleetView(UTILITIES, {size: (n + RING_SLACK, skeep.get(size, 1 << 40))
                                          for size, n in shown.items()})
            self.changes = Changes(url, MeterView(rings, watch), registry_prefix,
                                   self._clocks_moved, fleet)
            self.changes.reads = self.client if self.primary is None else self.primary

    def _connect(self, url: str, max_connections: int) -> aredis.Redis:
        return _client(url, max_connections)

    # ---- keys (every caller passes validated ids; see dashboards/validation.py)
    @property
    def namespace(self) -> str:
        return self.keys.namespace

    # ---- polled (background): clock and counters
    async def refresh(self) -> None:
        """Namespace pointer, partition clocks and marks and the stats hash: one round trip
        (two after a namespace switch)."""
        for _ in range(2):
            pipe = self.client.pipeline(transaction=False)
            pipe.get(self.pointer)
            pipe.hgetall(self.keys.highs)
            pipe.hgetall(self.keys.stats)
            pipe.hgetall(self.keys.marks)
            pipe.hgetall(self.keys.partitions)
            pipe.zcard(self._index)
            pointer, highs, stats, marks, counts, meters = await pipe.execute()
            ns = self._pinned or followed(pointer)
            if ns == self.namespace:
                break
            self.keys = self.keys.moved(ns)
        self._counts = {k.decode(): int(v) for k, v in counts.items()}
        self._registered = int(meters) // 2
        self._publish(_ints(highs), _ints(marks), {k.decode(): float(v) for k, v in stats.items()})
        if self.changes is not None:
            self.changes.follow(self.keys)

    def _publish(self, highs: dict[str, int], marks: dict[str, int], stats: dict[str, float]
                 ) -> None:
        """The clock and counters the pages read until the next poll."""
        self._polled = (highs, marks, stats)
        low, high = watermarks_and_newest(highs, marks)   # clock, or idle mark past it
        lowest = {u: int(lo) for u, lo in low.items() if u in UTILITIES}
        newest = {u: int(hi) for u, hi in high.items() if u in UTILITIES}
        self._clock = Clock(newest, lowest, stats.get("checkpoint_ts"), self.namespace)
        self._stats = Stats.from_flat(stats)

    def _clocks_moved(self, highs: dict[str, int]) -> None:
        """A change notice's partition clocks: the pages' clock moves with the windows."""
        polled, marks, stats = self._polled
        self._publish({**polled, **{k: max(v, polled.get(k, v)) for k, v in highs.items()}},
                      marks, stats)

    async def clock(self) -> Clock:
        return self._clock

    def fleet_version(self) -> int | None:
        """The change notice the fleet's windows in memory are as of (None: not held)."""
        if self.changes is None or not self.changes.ready or self.changes.fleet.asof is None:
            return None
        return self.changes.n

    def version(self, service_id: str) -> int | None:
        """The change notice a meter's answer is as of, when the view holds it (a cache
        key that changes whenever the answer may); None: not answered from memory."""
        if self.changes is None or not self.changes.ready or \
                meter_key(service_id) not in self.changes.view:
            return None
        return self.changes.n

    async def stats(self) -> Stats:
        return self._stats

    # ---- request path
    async def meter(self, service_id: str, reads: list[tuple[str, int, list[int]]]
                    ) -> tuple[dict[str, str] | None, list[np.ndarray]]:
        """The registry hash and one HMGET per (utility, size): one round trip.

        Memory first (dashboards/changes.py: no round trip, nothing waits on a checkpoint).
        Packed by hand: every household asks for the same window starts at a given clock,
        so their encoding is cached and only the keys are encoded per request (redis-py's
        per-argument packing was the largest CPU cost of a page)."""
        if self.changes is not None:
            got = await self.changes.meter(service_id, reads)
            if got is not None:
                return got
        parts = [resp.command(b"HGETALL", registry.meter_key(service_id, self.registry_prefix))]
        for utility, size, starts in reads:
            n, fields = _fields(tuple(starts))
            parts.append(resp.with_encoded(b"HMGET", self.keys.meter(service_id, utility, size),
                                           n, fields))
        payload = b"".join(parts)
        if self.primary is None:
            info, *values = await self._pipeline(self.client, payload, len(parts))
        else:
            info, *values = await self._hedged(payload, len(parts))
        if isinstance(info, list):  # RESP2 gives pairs as a flat list, RESP3 a map
            info = dict(zip(info[::2], info[1::2], strict=True))
        entry = {k.decode(): v.decode() for k, v in info.items()} if info else None
        flat = codec.decode_values([v for reply in values for v in reply], 0)  # one decode
        bounds = np.cumsum([len(reply) for reply in values])[:-1]
        return entry, np.split(flat, bounds)

    async def _hedged(self, payload: bytes, replies: int) -> list:
        """Replica first; if it has not answered within hedge_after, ask the primary too.

        A worker's checkpoint is one MULTI/EXEC that keeps its Redis busy; the replica
        applies it only after the primary has finished it, so the two are rarely stalled at
        the same moment. The slower request is left to finish (its connection goes back to
        the pool clean) and its answer dropped."""
        first = asyncio.ensure_future(self._pipeline(self.client, payload, replies))
        done, _ = await asyncio.wait({first}, timeout=self.hedge_after)
        if done or self._hedging >= MAX_HEDGES:   # a stalled primary must not pile up hedges
            return await first
        self.hedged += 1
        self._hedging += 1
        second = asyncio.ensure_future(self._pipeline(self.primary, payload, replies))
        second.add_done_callback(self._hedge_done)
        pending = {first, second}
        error: BaseException | None = None
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task.exception() is None:
                    for loser in pending:
                        loser.add_done_callback(retrieved)
                    return task.result()
                error = task.exception()
        raise error

    def _hedge_done(self, task: asyncio.Task) -> None:
        self._hedging -= 1

    async def _pipeline(self, client: aredis.Redis, payload: bytes, replies: int) -> list:
        pool = client.connection_pool
        conn = await pool.get_connection()
        try:
            return await roundtrip(conn, payload, replies)
        finally:
            await pool.release(conn)

    async def states(self, utility: str, size: int, starts: list[int]) -> np.ndarray:
        """Per-state windows: from memory (the change stream's); else from Redis, final
        ones through a short-lived cache (see FinalCache)."""
        if self.changes is not None and self.changes.ready and self.changes.fleet is not None:
            got = self.changes.fleet.read(utility, size, starts)
            if got is not None:
                return got
        out = codec.decode_values([None] * (len(STATES) * len(starts)), 0).reshape(
            len(STATES), len(starts)).copy()
        cache = self._finals.setdefault((self.namespace, utility, size), FinalCache())
        need = [i for i, w in enumerate(starts) if not cache.fill(out, i, w)]
        if need:
            fields = [f"{s}:{starts[i]}" for s in STATES for i in need]
            got = (await self._state_values(utility, size, fields)).reshape(
                len(STATES), len(need))
            wm = self._clock.watermark.get(utility)
            for j, i in enumerate(need):
                out[:, i] = got[:, j]
                if wm is not None and is_final(starts[i], size, self.grace, wm):
                    cache.put(starts[i], got[:, j].copy())
            cache.prune(starts[0])
        return out

    async def _state_values(self, utility: str, size: int, fields: list[str]) -> np.ndarray:
        """VALUE per field of a utility's state windows (one HMGET)."""
        return codec.decode_values(await self.client.hmget(self.keys.state(utility, size),
                                                           fields), 0)

    # ---- alerts (auth_kappa/insights): every partition's open ones and their history
    def alert_keys(self) -> list[tuple[bytes, str]]:
        """(command, key): HVALS of each partition's open alerts, ZRANGE of its history."""
        return [(op, self.keys.insight(kind, utility, p))
                for utility, n in sorted(self._counts.items()) for p in range(n)
                for op, kind in ((b"HVALS", "alerts"), (b"ZRANGE", "history"))]

    async def alerts(self) -> list[bytes]:
        """Every alert Redis holds, as JSON: one round trip (the partition counts come
        with the poll)."""
        pipe = self.client.pipeline(transaction=False)
        for op, key in self.alert_keys():
            pipe.execute_command(op.decode(), key, *((0, -1) if op == b"ZRANGE" else ()))
        return [raw for reply in await pipe.execute() for raw in reply]

    async def days(self, service_id: str) -> dict[str, list[bytes]]:
        """One round trip: each utility's past days and its open day (Layout.day_keys)."""
        pipe = self.client.pipeline(transaction=False)
        asked = []
        for utility, n in sorted(self._counts.items()):
            past, *opens = self.keys.day_keys(service_id, utility, n)
            pipe.hvals(past)
            for key in opens:
                pipe.hget(key, service_id)
            asked.append((utility, len(opens)))
        replies = await pipe.execute() if asked else []
        out: dict[str, list[bytes]] = {}
        for utility, n in asked:
            out[utility] = day_records(replies[0], replies[1:1 + n])
            replies = replies[1 + n:]
        return out

    async def sketches(self, utility: str, date: str) -> dict[str, list[bytes]]:
        pipe = self.client.pipeline(transaction=False)
        n = self._counts.get(utility, 0)
        for p in range(n):
            pipe.hgetall(self.keys.similar(utility, p, date))
        return sketch_shares(await pipe.execute() if n else [])

    async def owners(self, sids: list[str]) -> dict[str, dict[str, str] | None]:
        """Registry entries of these meters (None: unregistered). Kept OWNER_TTL seconds:
        the fleet's alerts name the same meters poll after poll."""
        now = time.monotonic()
        if len(self._owners) > OWNERS_KEPT:
            self._owners.clear()
        need = [s for s in dict.fromkeys(sids) if self._owners.get(s, (0.0, None))[0] <= now]
        if need:
            got = await self._registry_entries(need)
            for sid, entry in zip(need, got, strict=True):
                self._owners[sid] = (now + OWNER_TTL, entry)
        return {s: self._owners[s][1] for s in sids}

    async def _registry_entries(self, sids: list[str]) -> list[dict[str, str] | None]:
        pipe = self.client.pipeline(transaction=False)
        for sid in sids:
            pipe.hgetall(registry.meter_key(sid, self.registry_prefix))
        return [_entry(info) for info in await pipe.execute()]

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
        """As of the last poll (a fleet page must not wait on Redis for it)."""
        if self._registered is not None:
            return self._registered
        return int(await self.client.zcard(self._index)) // 2

    async def ping(self) -> bool:
        try:
            return bool(await self.client.ping())
        except Exception:  # noqa: BLE001 - healthz reports any failure as "down"
            return False

    async def close(self) -> None:
        if self.changes is not None:
            await self.changes.close()
        await self.client.aclose()
        if self.primary is not None:
            await self.primary.aclose()


MAX_HEDGES = 8
RING_SLACK = 8         # windows held beyond what a page shows (the clock moves on)
OWNER_TTL = 60.0       # seconds a registry entry read for the alerts is reused
OWNERS_KEPT = 200_000  # entries kept at most (then forgotten all at once)


def _entry(info: dict | list | None) -> dict[str, str] | None:
    """A registry hash as read (RESP2 flat list or a dict of bytes): str -> str, or None."""
    if isinstance(info, list):
        info = dict(zip(info[::2], info[1::2], strict=True))
    return {k.decode(): v.decode() for k, v in info.items()} if info else None


def _client(url: str, max_connections: int) -> aredis.Redis:
    pool = aredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=5, socket_connect_timeout=5,
        socket_timeout=10)
    return aredis.Redis(connection_pool=pool)


@functools.lru_cache(maxsize=256)
def _fields(starts: tuple[int, ...]) -> tuple[int, bytes]:
    """RESP encoding of window-start fields, shared by every request at the same clock."""
    return len(starts), resp.encoded(starts)


class FinalCache:
    """Per-state values of final windows (window end + grace <= the watermark in Redis).

    A final window takes no more readings (a late one is routed, not merged), so the
    fleet map re-reads only the open windows: ~100 fields instead of 51 x 60. The
    watermark read here is the minimum over the partitions that have data, which can run
    ahead of a worker still waiting on an empty partition; entries therefore live only
    `ttl` seconds, so such a rare miss heals within a minute.
    """

    def __init__(self, ttl: float = 60.0) -> None:
        self.ttl = ttl
        self._cells: dict[int, tuple[float, np.ndarray]] = {}

    def fill(self, out: np.ndarray, i: int, window_start: int) -> bool:
        hit = self._cells.get(window_start)
        if hit is None or hit[0] < time.monotonic():
            return False
        out[:, i] = hit[1]
        return True

    def put(self, window_start: int, values: np.ndarray) -> None:
        self._cells[window_start] = (time.monotonic() + self.ttl, values)

    def prune(self, oldest: int) -> None:
        now = time.monotonic()
        for w in [w for w, (until, _) in self._cells.items() if w < oldest or until < now]:
            del self._cells[w]


def _ints(raw: dict) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in raw.items()}


async def roundtrip(conn: Any, payload: bytes, replies: int) -> list:
    """A packed pipeline sent and its replies read on one connection; a socket left with
    replies unread is closed, never reused."""
    try:
        await conn.send_packed_command(payload, check_health=False)
        return [await conn.read_response() for _ in range(replies)]
    except BaseException:
        await conn.disconnect()
        raise
