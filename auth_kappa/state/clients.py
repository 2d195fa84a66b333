"""Redis clients for one server or a Redis Cluster, from the same URL and settings.

Every part (worker, replay, Engine.connect, the dashboard) connects through here, so
AUTH_REDIS_CLUSTER=1 switches all of them: redis-py's cluster client follows slots
(MOVED, failovers), and `node_of` tells the checkpoint's own socket where a slot lives.
A cluster's URL may name several seed nodes, redis://[user:pass@]h1:7000,h2:7001/0, so a
process (re)starting while one of them is down still finds the cluster.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster

Client = redis.Redis | RedisCluster


def seeds(url: str) -> tuple[str, list[tuple[str, int]]]:
    """(the URL with its first node only, every node it names)."""
    scheme, sep, rest = url.partition("://")
    creds, at, hosts = rest.rpartition("@")
    hosts, slash, tail = hosts.partition("/")
    nodes = []
    for node in hosts.split(","):
        host, _, port = node.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"cluster node {node!r} is not host:port")
        nodes.append((host, int(port)))
    first = f"{scheme}{sep}{creds}{at}{hosts.split(',')[0]}{slash}{tail}"
    return first, nodes


def sync_client(url: str, cluster: bool = False, **options: Any) -> Client:
    """A blocking client; on a cluster, any seed node finds the others."""
    if cluster:
        first, nodes = seeds(url)
        from redis.cluster import ClusterNode

        return RedisCluster.from_url(first, startup_nodes=[ClusterNode(h, p) for h, p in nodes],
                                     **options)
    return redis.Redis.from_url(url, **options)


def async_client(url: str, cluster: bool = False, **options: Any
                 ) -> redis.asyncio.Redis | AsyncRedisCluster:
    if cluster:
        first, nodes = seeds(url)
        from redis.asyncio.cluster import ClusterNode as AsyncNode

        return AsyncRedisCluster.from_url(first, startup_nodes=[AsyncNode(h, p) for h, p in nodes],
                                          **options)
    return redis.asyncio.Redis.from_url(url, **options)


def is_cluster(client: object) -> bool:
    return isinstance(client, (RedisCluster, AsyncRedisCluster))


def node_of(client: Client, key: str, refresh: bool = False) -> dict[str, Any]:
    """Connection settings (redis-py's connection_kwargs) of the primary serving `key`;
    `refresh` re-reads the slot map first (after a failover or a MOVED)."""
    if not isinstance(client, RedisCluster):
        return dict(client.connection_pool.connection_kwargs)
    if refresh:
        client.nodes_manager.initialize()
    node = client.get_node_from_key(key)
    if node.redis_connection is None:
        client.nodes_manager.initialize()
        node = client.get_node_from_key(key)
    return dict(node.redis_connection.connection_pool.connection_kwargs)


def primaries(client: Client) -> list[redis.Redis]:
    """One client per primary (a single server: itself), for per-node work (SCAN)."""
    if not isinstance(client, RedisCluster):
        return [client]
    return [n.redis_connection for n in client.get_primaries()]
