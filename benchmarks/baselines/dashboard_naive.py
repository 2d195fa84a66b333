"""Baselines for bench_dashboard: the same household summary, read the obvious ways.

- naive: one Redis round trip per window (HGET per minute and per hour, 252 per page),
  no cache; the straightforward port of the original's per-key reads.
- engine: the library's Engine.connect().windows() per (utility, size): HGETALL of the
  whole hash and a pandas frame each, in Starlette's thread pool, no cache.
Both feed the real queries.meter_summary, so the JSON is identical and only the reads
differ. Mounted by benchmarks/dashboard_server.py under /bench/...; not part of the app.
"""

from __future__ import annotations

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from auth_kappa.engine import Engine
from auth_kappa.state import codec
from dashboards import queries, registry, validation
from dashboards.api import NotFound, ok
from dashboards.context import ctx
from dashboards.redis_reader import RedisReader


class NaiveReads:
    """A RedisReader whose meter() does one HGET round trip per window."""

    def __init__(self, src: RedisReader) -> None:
        self.src, self.sizes, self.kind = src, src.sizes, "naive"

    async def clock(self):
        return await self.src.clock()

    async def meter(self, service_id: str, reads: list[tuple[str, int, list[int]]]):
        client = self.src.client
        info = await client.hgetall(registry.meter_key(service_id, self.src.registry_prefix))
        out = []
        for utility, size, starts in reads:
            key = self.src.keys.meter(service_id, utility, size)
            out.append(codec.decode_values([await client.hget(key, w) for w in starts], 0))
        entry = {k.decode(): v.decode() for k, v in info.items()} if info else None
        return entry, out


class EngineReads:
    """Engine.connect().windows(): the library's query path, a DataFrame per slot."""

    def __init__(self, src: RedisReader, engine: Engine) -> None:
        self.src, self.engine, self.sizes, self.kind = src, engine, src.sizes, "engine"

    async def clock(self):
        return await self.src.clock()

    async def meter(self, service_id: str, reads: list[tuple[str, int, list[int]]]):
        def read() -> list[np.ndarray]:
            out = []
            for utility, size, starts in reads:
                df = self.engine.windows(level="meter", utility=utility, window=size,
                                         key=service_id)
                starts_s = df["window_start"].to_numpy("datetime64[s]").astype(np.int64)
                by_start = dict(zip(starts_s.tolist(), df.itertuples(index=False), strict=True))
                v = codec.decode_values([None] * len(starts), 0).copy()
                for i, w in enumerate(starts):
                    row = by_start.get(w)
                    if row is not None:
                        v[i] = (row.sum, row.count, row.min, row.max)
                out.append(v)
            return out
        values = await run_in_threadpool(read)
        info = await self.src.client.hgetall(
            registry.meter_key(service_id, self.src.registry_prefix))
        entry = {k.decode(): v.decode() for k, v in info.items()} if info else None
        return entry, values


def routes(engine: Engine) -> list[Route]:
    async def naive(request: Request) -> Response:
        return await _summary(request, NaiveReads(ctx(request).reader))

    async def library(request: Request) -> Response:
        return await _summary(request, EngineReads(ctx(request).reader, engine))

    return [Route("/bench/naive/meters/{service_id}", naive),
            Route("/bench/engine/meters/{service_id}", library)]


async def _summary(request: Request, reads: object) -> Response:
    sid = validation.service_id(request.path_params["service_id"])
    ctx(request).access.require_meter(request, sid)
    data = await queries.meter_summary(reads, sid, "hour")
    if data is None:
        raise NotFound(sid)
    return ok(data)
