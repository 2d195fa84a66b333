"""The Redis a unit-cost run writes to: the stack's single server, or a private 3-primary
Redis Cluster started (and stopped) by the project's own `stack up redis --redis-cluster`.

Either way the benchmark needs the same three things: the URL and mode the workers get,
the server CPU used so far summed over the primaries (INFO cpu), and the bytes a namespace
takes summed over the primaries (MEMORY USAGE of its keys).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.crc import key_slot

from auth_kappa.stack.redis_cluster import NODES

ROOT = Path(__file__).resolve().parents[1]
BUS_OFFSET = 10_000   # a cluster node's bus port is its port + 10000


@dataclass
class RedisTarget:
    label: str                   # "1 primary" / "3 primaries (cluster)"
    url: str
    cluster: bool
    primaries: list[redis.Redis] = field(default_factory=list)
    replicas: list[redis.Redis] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        """What makes a worker use this Redis."""
        return {"AUTH_REDIS_URL": self.url, "AUTH_REDIS_CLUSTER": "01"[self.cluster]}

    def cpu(self) -> list[float]:
        """CPU seconds used so far by each primary (INFO cpu used_cpu_sys + used_cpu_user)."""
        return [node_cpu(c) for c in self.primaries]

    def used_memory(self) -> int:
        """INFO memory used_memory summed over the primaries (a shared server's includes
        whatever else it holds: take differences)."""
        return sum(int(c.info("memory")["used_memory"]) for c in self.primaries)

    def tags_per_primary(self, tags: list[str]) -> list[int]:
        """How many of the hash tags (e.g. {gas:3}) each primary serves, in the order of
        `primaries`: a primary's share of the writes follows its share of the tags."""
        if not self.cluster:
            return [len(tags)]
        slots = self.primaries[0].cluster("slots")
        port_of = [int(lo_hi_primary[2][1]) for lo_hi_primary in slots]
        order = [int(c.connection_pool.connection_kwargs["port"]) for c in self.primaries]
        counts = dict.fromkeys(order, 0)
        for tag in tags:
            slot = key_slot(tag.encode())
            i = next(i for i, (lo, hi, *_) in enumerate(slots) if lo <= slot <= hi)
            counts[port_of[i]] += 1
        return [counts[port] for port in order]

    def replica_cpu(self) -> float:
        return sum(node_cpu(c) for c in self.replicas)

    def namespace_bytes(self, pattern: str, batch: int = 1000) -> tuple[int, int]:
        """(bytes, keys) of every key matching `pattern`, summed over the primaries:
        MEMORY USAGE ... SAMPLES 0 (every element counted), as bench_state_size does."""
        total = keys = 0
        for node in self.primaries:
            names = list(node.scan_iter(match=pattern, count=batch))
            for lo in range(0, len(names), batch):
                pipe = node.pipeline(transaction=False)
                for name in names[lo:lo + batch]:
                    pipe.memory_usage(name, samples=0)
                got = [n or 0 for n in pipe.execute()]
                total, keys = total + sum(got), keys + len(got)
        return total, keys


def node_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def single(url: str) -> RedisTarget:
    """The stack's (shared) Redis server."""
    return RedisTarget("1 primary", url, False, [redis.Redis.from_url(url)])


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_base(count: int = NODES, start: int = 39000) -> int:
    """First port p >= start with p..p+count-1 and their bus ports (+10000) free."""
    p = start + os.getpid() % 500 * 7
    while not all(_free(p + a + i) for a in (0, BUS_OFFSET) for i in range(count)):
        p += count + 1
        if p + count + BUS_OFFSET > 65535:
            raise SystemExit("no free ports for a private Redis Cluster")
    return p


def _stack(home: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "AUTH_STACK_DIR": str(home), "AUTH_REDIS_URL": url}
    env.pop("AUTH_REDIS_CLUSTER", None)
    return subprocess.run([sys.executable, "-m", "auth_kappa.cli.main", "stack", *args],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=240)


@contextlib.contextmanager
def private_cluster() -> Iterator[RedisTarget]:
    """A fresh 3-primary, 3-replica cluster in a temp stack dir, gone afterwards."""
    base = free_base()
    url = f"redis://127.0.0.1:{base}/0"
    home = Path(tempfile.mkdtemp(prefix="bench-costs-rc-"))
    try:
        run = _stack(home, url, "up", "redis", "--redis-cluster")
        if run.returncode:
            raise SystemExit("bench_unit_costs: `stack up redis --redis-cluster` failed: "
                             + (run.stdout + run.stderr).strip()[-400:])
        nodes = [redis.Redis(port=base + i) for i in range(NODES)]
        roles = [n.info("replication")["role"] for n in nodes]
        yield RedisTarget(f"{roles.count('master')} primaries (cluster)", url, True,
                          [n for n, r in zip(nodes, roles, strict=True) if r == "master"],
                          [n for n, r in zip(nodes, roles, strict=True) if r != "master"])
    finally:
        _stack(home, url, "down", "redis")
        shutil.rmtree(home, ignore_errors=True)
