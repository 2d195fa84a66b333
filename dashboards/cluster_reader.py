"""The live source on a Redis Cluster (AUTH_REDIS_CLUSTER=1): the same pages, each read one
pipelined round trip per node.

On a cluster every key a worker's checkpoint writes carries its source partition's tag
{<utility>:<p>} (auth_kappa/state/layout.py), so here:
 - the clock and counters are every partition's progress hash, merged (layout.merged); the
   `partitions` hash (utility -> partition count) says which hashes there are;
 - a meter's windows are in the slot of its partition: Kafka's key partitioner over that
   count (topology/partitioner.py);
 - a state window is the sum of its partitions' shares: the same HMGET on every share key,
   sums and counts added, min and max combined.
A read's commands are grouped by the primary serving their slot and sent hand-packed, one
pipeline per node, to all nodes at once. A redirection (MOVED/ASK after a failover or a
resharding) or a lost connection falls back to redis-py's cluster pipeline, which follows
it and updates the slot map, so the next read is fast again.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, NamedTuple

import numpy as np
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.exceptions import RedisClusterException, RedisError

from auth_kappa.errors import UserError
from auth_kappa.state import codec, resp
from auth_kappa.state.clients import async_client
from auth_kappa.state.layout import followed, merged
from auth_kappa.topology.partitioner import partitions_of
from dashboards import registry
from dashboards.redis_reader import RedisReader, _entry, _fields, roundtrip

PROGRESS = ("highs", "marks", "stats")
SPARE = 8   # connections per node beyond the bounded reads (the poll, a redirection)


class Command(NamedTuple):
    key: str
    packed: bytes                # RESP, for the hand-packed per-node pipelines
    args: tuple[Any, ...]        # the same command for redis-py's cluster pipeline


class ClusterReader(RedisReader):
    cluster = True

    def __init__(self, url: str, *args: Any, replica_url: str | None = None,
                 max_connections: int = 32, **kwargs: Any) -> None:
        if replica_url:
            raise UserError("AUTH_DASHBOARD_REDIS_REPLICA_URL is for a single Redis; with "
                            "AUTH_REDIS_CLUSTER=1 unset it (the cluster has its own replicas)")
        self._counts: dict[str, int] = {}   # utility -> partitions, as of the last poll
        self._reads = asyncio.Semaphore(max_connections)   # <= 1 connection per node each
        self.rerouted = 0   # reads that fell back to redis-py's pipeline (a stale slot map)
        super().__init__(url, *args, max_connections=max_connections, **kwargs)

    def _connect(self, url: str, max_connections: int) -> AsyncRedisCluster:
        return async_client(url, True, max_connections=max_connections + SPARE,
                            socket_connect_timeout=5, socket_timeout=10)

    # ---- polled: partition counts, namespace, every partition's progress
    async def refresh(self) -> None:
        """One round trip per node while the namespace and partition counts hold (the
        progress keys are those of the counts read by the previous poll)."""
        for _ in range(3):
            keys = {kind: self.keys.progress_keys(kind, self._counts) for kind in PROGRESS}
            pipe = self.client.pipeline()
            pipe.get(self.pointer)
            pipe.hgetall(self.keys.partitions)
            for kind in PROGRESS:
                for key in keys[kind]:
                    pipe.hgetall(key)
            pointer, counts, *hashes = await pipe.execute()
            counts = {k.decode(): int(v) for k, v in counts.items()}
            ns = self._pinned or followed(pointer)
            if ns != self.namespace:   # a rebuild's switch: its counts are likely the same
                self.keys = self.keys.moved(ns)
            elif counts != self._counts:
                self._counts = counts
            else:
                break
        progress, at = {}, 0
        for kind in PROGRESS:
            progress[kind] = merged(kind, hashes[at:at + len(keys[kind])])
            at += len(keys[kind])
        self._publish({k: int(v) for k, v in progress["highs"].items()},
                      {k: int(v) for k, v in progress["marks"].items()}, progress["stats"])

    # ---- request path
    async def meter(self, service_id: str, reads: list[tuple[str, int, list[int]]]
                    ) -> tuple[dict[str, str] | None, list[np.ndarray]]:
        """The registry hash and one HMGET per (utility, size) in the meter's partition:
        one round trip per node holding them."""
        key = registry.meter_key(service_id, self.registry_prefix)
        cmds = [Command(key, resp.command(b"HGETALL", key), ("HGETALL", key))]
        known = [i for i, (u, _, _) in enumerate(reads) if self._counts.get(u)]
        for i in known:
            utility, size, starts = reads[i]
            p = partition(service_id, self._counts[utility])
            mkey = self.keys.meter(service_id, utility, size, p)
            n, fields = _fields(tuple(starts))
            cmds.append(Command(mkey, resp.with_encoded(b"HMGET", mkey, n, fields),
                                ("HMGET", mkey, *starts)))
        info, *got = await self.per_node(cmds)
        if isinstance(info, list):  # RESP2 pairs as a flat list (hand-packed), else a dict
            info = dict(zip(info[::2], info[1::2], strict=True))
        entry = {k.decode(): v.decode() for k, v in info.items()} if info else None
        replies: list[list] = [[None] * len(starts) for _, _, starts in reads]
        for i, reply in zip(known, got, strict=True):
            replies[i] = reply
        flat = codec.decode_values([v for reply in replies for v in reply], 0)
        bounds = np.cumsum([len(reply) for reply in replies])[:-1]
        return entry, np.split(flat, bounds)

    async def _state_values(self, utility: str, size: int, fields: list[str]) -> np.ndarray:
        """Every partition's share of these fields, added up."""
        n = self._counts.get(utility)
        if not n:
            return codec.decode_values([None] * len(fields), 0)
        encoded = resp.encoded(fields)
        cmds = [Command(k, resp.with_encoded(b"HMGET", k, len(fields), encoded),
                        ("HMGET", k, *fields)) for k in self.keys.state_keys(utility, size, n)]
        replies = await self.per_node(cmds)
        return add_shares(codec.decode_values([v for r in replies for v in r], 0)
                          .reshape(len(cmds), len(fields)))

    async def per_node(self, cmds: list[Command]) -> list:
        """Replies in order: the commands grouped by node, one hand-packed pipeline per node,
        all nodes at once; on a redirection or a lost node, redis-py's cluster pipeline."""
        async with self._reads:
            try:
                await self.client.initialize()   # a no-op once the slot map is known
                groups: dict[str, tuple[ClusterNode, list[int]]] = {}
                for i, cmd in enumerate(cmds):
                    node = self.client.get_node_from_key(cmd.key)
                    groups.setdefault(node.name, (node, []))[1].append(i)
            except (RedisError, RedisClusterException, OSError):
                return await self._fallback(cmds)
            answers = await asyncio.gather(
                *(_on_node(node, b"".join(cmds[i].packed for i in idx), len(idx))
                  for node, idx in groups.values()), return_exceptions=True)
            if any(isinstance(a, (RedisError, RedisClusterException, OSError))
                   for a in answers):
                self.rerouted += 1
                return await self._fallback(cmds)
            out: list = [None] * len(cmds)
            for (_, idx), answer in zip(groups.values(), answers, strict=True):
                if isinstance(answer, BaseException):
                    raise answer
                for i, reply in zip(idx, answer, strict=True):
                    out[i] = reply
            return out

    async def alerts(self) -> list[bytes]:
        """Every partition's open alerts and history: one pipeline per node."""
        cmds = [Command(key, resp.command(op, key, *((b"0", b"-1") if op == b"ZRANGE" else ())),
                        (op.decode(), key, *((0, -1) if op == b"ZRANGE" else ())))
                for op, key in self.alert_keys()]
        return [raw for reply in (await self.per_node(cmds) if cmds else []) for raw in reply]

    async def _registry_entries(self, sids: list[str]) -> list[dict[str, str] | None]:
        keys = [registry.meter_key(s, self.registry_prefix) for s in sids]
        replies = await self.per_node([Command(k, resp.command(b"HGETALL", k), ("HGETALL", k))
                                       for k in keys])
        return [_entry(r) for r in replies]

    # redis-py's own cluster calls, within the same bound (its pool raises, not waits, when
    # a node's connections run out)
    async def search(self, text: str, limit: int) -> list[dict[str, str]]:
        async with self._reads:
            return await super().search(text, limit)

    async def days(self, service_id: str) -> dict[str, list[bytes]]:
        async with self._reads:
            return await super().days(service_id)

    async def sketches(self, utility: str, date: str) -> dict[str, list[bytes]]:
        async with self._reads:
            return await super().sketches(utility, date)

    async def registry_size(self) -> int:
        async with self._reads:
            return await super().registry_size()

    async def ping(self) -> bool:
        async with self._reads:
            return await super().ping()

    async def _fallback(self, cmds: list[Command]) -> list:
        pipe = self.client.pipeline()
        for cmd in cmds:
            pipe.execute_command(*cmd.args)
        return await pipe.execute()


async def _on_node(node: ClusterNode, payload: bytes, replies: int) -> list:
    conn = node.acquire_connection()
    try:
        return await roundtrip(conn, payload, replies)
    finally:
        node.release(conn)


@functools.lru_cache(maxsize=65536)
def partition(service_id: str, partitions: int) -> int:
    """The meter's source partition (Kafka's key partitioner), where its keys live."""
    return int(partitions_of([service_id.encode()], partitions)[0])


def add_shares(shares: np.ndarray) -> np.ndarray:
    """(partitions, fields) VALUE shares as one VALUE per field: sums and counts add up,
    min and max combine (an empty share is count 0, min inf, max -inf)."""
    out = np.empty(shares.shape[1], codec.VALUE)
    out["sum"], out["count"] = shares["sum"].sum(axis=0), shares["count"].sum(axis=0)
    out["min"], out["max"] = shares["min"].min(axis=0), shares["max"].max(axis=0)
    return out
