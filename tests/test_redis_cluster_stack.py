"""`stack up --redis-cluster`: six real redis-server nodes joined by `redis-cli --cluster
create` (3 primaries, 3 replicas, AOF on), known to `status` and `down`, and the same
cluster with its data after a restart."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import redis
from redis.cluster import RedisCluster as ClusterClient

from auth_kappa.stack import probes
from auth_kappa.stack.redis_cluster import NODES
from tests.chaos.services import free_ports

pytestmark = pytest.mark.stack


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "auth_kappa.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=180)


def test_stack_runs_a_redis_cluster_and_restarts_it_with_its_data(tmp_path):
    base = free_ports(NODES, start=20000, also=(10000,))   # a node's bus port is +10000
    env = {**os.environ, "AUTH_STACK_DIR": str(tmp_path),
           "AUTH_REDIS_URL": f"redis://127.0.0.1:{base}/0"}
    try:
        up = _cli(["stack", "up", "redis", "--redis-cluster"], env)
        assert up.returncode == 0, up.stdout + up.stderr
        nodes = redis.Redis(port=base).cluster("nodes")
        roles = sorted("master" in n["flags"] for n in nodes.values())
        assert len(nodes) == NODES and roles.count(True) == 3, nodes
        assert all(redis.Redis(port=base + i).config_get("appendonly")["appendonly"] == "yes"
                   for i in range(NODES))
        client = ClusterClient(host="127.0.0.1", port=base)
        for i in range(100):   # keys over every primary's slots
            client.set(f"k{i}", i)
        status = _cli(["stack", "status", "redis"], env)
        assert status.returncode == 0 and f"127.0.0.1:{base}-{base + NODES - 1}" in \
            status.stdout and "running" in status.stdout, status.stdout
        ids = set(nodes)

        assert _cli(["stack", "down", "redis"], env).returncode == 0
        assert not any(probes.port_open("127.0.0.1", base + i) for i in range(NODES))
        again = _cli(["stack", "up", "redis", "--redis-cluster"], env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert set(redis.Redis(port=base).cluster("nodes")) == ids
        client = ClusterClient(host="127.0.0.1", port=base)
        assert [int(client.get(f"k{i}")) for i in range(100)] == list(range(100))
    finally:
        _cli(["stack", "down", "redis"], env)
