"""A Redis Cluster of Debian redis-servers: 3 primaries and 3 replicas on 7000-7005, each
with append-only persistence, joined once by `redis-cli --cluster create`.

`stack up --redis-cluster` starts it instead of the single Redis and remembers the choice
(<AUTH_STACK_DIR>/redis-cluster/enabled), so `stack status` and `down` know it; `stack
down redis` stops it and forgets the choice.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import redis

from auth_kappa.config import Config
from auth_kappa.errors import UserError
from auth_kappa.stack import process
from auth_kappa.stack.redis_server import RedisServer
from auth_kappa.stack.service import Service

FIRST_PORT = 7000  # unless AUTH_REDIS_URL names another port than the single Redis's
NODES = 6          # 3 primaries, each with one replica
REPLICAS = 1


@dataclass
class RedisNode(RedisServer):
    """One cluster node: the stack's Redis settings plus cluster mode."""

    node_port: int = FIRST_PORT

    def __post_init__(self) -> None:
        self.name = f"redis-{self.node_port}"

    @property
    def home(self) -> Path:
        return cluster_home(self.config) / str(self.node_port)

    @property
    def port(self) -> int:
        return self.node_port

    def command(self) -> list[str]:
        return [*super().command(), "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000"]


@dataclass
class RedisCluster(Service):
    name: str = "redis"
    start_timeout: float = 60.0

    def __post_init__(self) -> None:
        self.first = first_port(self.config)
        self.members = [RedisNode(self.config, node_port=self.first + i) for i in range(NODES)]
        self.balanced: list[str] = []   # what start() did to a new cluster's slots

    @property
    def home(self) -> Path:
        return cluster_home(self.config)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.first}-{self.first + NODES - 1}"

    @property
    def logfile(self) -> Path:
        return self.members[0].logfile

    def answering(self) -> bool:
        return all(m.answering() for m in self.members) and self.state() == "ok"

    def state(self) -> str:
        """cluster_state of the first node ("ok" once every slot is served)."""
        try:
            info = redis.Redis(port=self.first, socket_timeout=2).execute_command("CLUSTER INFO")
        except redis.RedisError:
            return "down"
        return str(info.get("cluster_state", "unknown"))   # redis-py parses it to a dict

    def own_pid(self) -> int | None:
        return self.members[0].own_pid()

    def start(self) -> int:
        enable(self.config)
        for m in self.members:
            if not m.answering():
                m.launch()
        process.wait_until(lambda: all(m.answering() for m in self.members),
                           what=f"redis nodes at {self.address}", timeout=self.start_timeout,
                           logfile=self.logfile)
        created = not self._created()
        if created:
            self._create()
        process.wait_until(self._formed, what="redis cluster (3 primaries, 3 replicas)",
                           timeout=self.start_timeout, logfile=self.logfile)
        if created:   # empty yet: moving slots is instant (stack/tag_balance.py)
            self._balance_tags()
        return self.own_pid() or 0

    def _balance_tags(self) -> None:
        """Spread the partition tags of config.partitions evenly over the primaries: the
        slots `--cluster create` splits in thirds put 12 tags 6/3/3."""
        from auth_kappa.stack.tag_balance import balance
        from auth_kappa.topology.schema import UTILITIES

        seeds = ",".join(f"127.0.0.1:{m.port}" for m in self.members)
        report = balance(f"redis://{seeds}/0", dict.fromkeys(UTILITIES, self.config.partitions))
        self.balanced = [f"partition tags of {self.config.partitions} partitions balanced "
                         f"over the primaries: {report.summary()}"]

    def _formed(self) -> bool:
        """Every slot served, and each replica known as one (gossip takes a moment)."""
        if self.state() != "ok":
            return False
        try:
            nodes = redis.Redis(port=self.first, socket_timeout=2).cluster("nodes")
        except redis.RedisError:
            return False
        replicas = sum("slave" in n["flags"] for n in nodes.values())
        return len(nodes) == NODES and replicas == NODES - NODES // (REPLICAS + 1)

    def _created(self) -> bool:
        """The nodes know each other already (a restart: nodes.conf kept the cluster)."""
        try:
            nodes = redis.Redis(port=self.first, socket_timeout=2).execute_command(
                "CLUSTER NODES")
        except redis.RedisError:
            return False
        return len(nodes) >= NODES   # redis-py: {address: node}

    def _create(self) -> None:
        cli = shutil.which("redis-cli")
        if not cli:
            raise UserError("redis-cli is needed to create the cluster; run: "
                            "apt-get install -y redis-tools")
        run = subprocess.run([cli, "--cluster", "create",
                              *(f"127.0.0.1:{m.port}" for m in self.members),
                              "--cluster-replicas", str(REPLICAS), "--cluster-yes"],
                             capture_output=True, text=True, timeout=120)
        if run.returncode != 0:
            last = (run.stdout + run.stderr).strip().splitlines()[-1:] or ["(no output)"]
            raise UserError(f"redis-cli --cluster create failed: {last[0][:200]}")

    def stop(self) -> bool:
        stopped = [m.stop() for m in self.members]
        marker(self.config).unlink(missing_ok=True)
        return any(stopped)

    def after_start(self) -> list[str]:
        primaries = NODES // (REPLICAS + 1)
        seeds = ",".join(f"127.0.0.1:{self.first + i}" for i in range(primaries))
        return [*self.balanced, f"{primaries} primaries + {NODES - primaries} replicas (AOF on); set "
                f"AUTH_REDIS_URL=redis://{seeds}/0 AUTH_REDIS_CLUSTER=1"]


def first_port(config: Config) -> int:
    port = urlparse(config.redis_url).port or 6379
    return FIRST_PORT if port == 6379 else port


def cluster_home(config: Config) -> Path:
    return Path(config.stack_dir).resolve() / "redis-cluster"


def marker(config: Config) -> Path:
    return cluster_home(config) / "enabled"


def enable(config: Config) -> None:
    marker(config).parent.mkdir(parents=True, exist_ok=True)
    marker(config).write_text("1\n")


def redis_service(config: Config) -> Service:
    """The stack's Redis: the cluster when asked for (flag) or last started, else one node."""
    if config.redis_cluster or marker(config).exists():
        return RedisCluster(config)
    return RedisServer(config)
