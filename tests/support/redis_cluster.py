"""A private Redis Cluster for a test session: six real redis-server nodes started by the
project's own `stack up redis --redis-cluster`, stopped at the end; its primaries are
killed by their own pids in the failover tests."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.crc import key_slot

from auth_kappa.stack.redis_cluster import NODES
from tests.chaos.services import free_ports


@dataclass
class PrivateCluster:
    base: int
    home: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.base}/0"

    @property
    def seeds_url(self) -> str:
        """Every node as a seed: a process starting while one is down still connects."""
        return "redis://" + ",".join(f"127.0.0.1:{p}" for p in self.ports()) + "/0"

    @property
    def env(self) -> dict[str, str]:
        """What makes every part of AUTH-Kappa use this cluster."""
        return {"AUTH_REDIS_URL": self.seeds_url, "AUTH_REDIS_CLUSTER": "1"}

    @property
    def stack_env(self) -> dict[str, str]:
        return {**os.environ, "AUTH_STACK_DIR": str(self.home), "AUTH_REDIS_URL": self.url}

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "auth_kappa.cli.main", *args],
                              env=self.stack_env, capture_output=True, text=True, timeout=180)

    def up(self) -> None:
        run = self.cli("stack", "up", "redis", "--redis-cluster")
        assert run.returncode == 0, run.stdout + run.stderr

    def down(self) -> None:
        self.cli("stack", "down", "redis")

    def ports(self) -> list[int]:
        return [self.base + i for i in range(NODES)]

    def primary_of(self, key: str) -> int:
        """Port of the primary serving `key` now."""
        slot = key_slot(key.encode())
        for port in self.ports():
            try:
                info = redis.Redis(port=port, socket_timeout=2).info("replication")
                shards = redis.Redis(port=port, socket_timeout=2).cluster("slots")
            except redis.RedisError:
                continue   # the killed one
            if info.get("role") != "master":
                continue
            for lo, hi, primary, *_ in shards:
                if lo <= slot <= hi:
                    return int(primary[1])
        raise AssertionError(f"no primary serves slot {slot}")

    def replica_of(self, primary: int) -> int:
        """Port of the primary's (only) replica."""
        info = redis.Redis(port=primary).info("replication")
        return int(info["slave0"]["port"])

    def pid(self, port: int) -> int:
        return int(redis.Redis(port=port).info("server")["process_id"])

    def wait_primary(self, key: str, port: int, timeout: float = 60) -> None:
        """Until the node on `port` serves `key` as its primary (a failover's promotion)."""
        deadline = time.monotonic() + timeout
        while self.primary_of(key) != port:
            assert time.monotonic() < deadline, f"{port} was not promoted for {key}"
            time.sleep(0.2)

    def healthy(self, timeout: float = 60) -> None:
        """Every slot served again (after a failover)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for port in self.ports():
                try:
                    if redis.Redis(port=port, socket_timeout=1).cluster("info")[
                            "cluster_state"] == "ok":
                        return
                except redis.RedisError:
                    continue
            time.sleep(0.3)
        raise AssertionError("the cluster did not serve every slot again")


def start_private_cluster() -> PrivateCluster:
    base = free_ports(NODES, start=21000, also=(10000,))
    cluster = PrivateCluster(base, Path(tempfile.mkdtemp(prefix="auth-rc-")))
    cluster.up()
    return cluster
