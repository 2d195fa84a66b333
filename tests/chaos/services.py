"""Private Kafka (KRaft, one node or a replicated cluster) and Redis for one chaos run, on
free ports under a temp dir.

The shared stack on the default ports serves other engineers' tests, so faults that kill or
freeze a service must hit services of our own. They are the project's own stack services
(auth_kappa/stack) given a Config with other ports and another stack_dir.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from auth_kappa.config import Config
from auth_kappa.stack import process
from auth_kappa.stack.kafka_broker import (
    CONTROLLER_OFFSET,
    SASL_OFFSET,
    KafkaBroker,
    KafkaCluster,
)
from auth_kappa.stack.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]


class PrivateKafka(KafkaBroker):
    """The stack's broker; topics are made per scenario, with their prefix."""

    def after_start(self) -> list[str]:
        return []


class PrivateCluster(KafkaCluster):
    """The stack's replicated Kafka; topics are made per scenario."""

    def after_start(self) -> list[str]:
        return []


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


# ports tests/test_stack.py uses by number: a second stack's Kafka, Redis and S3, and
# the Kafka its runs that stop before Kafka starts would listen on; never leased
SECOND_STACK = {"kafka": 29092, "redis": 26379, "s3": 16333}
NO_KAFKA = 19092
# SeaweedFS binds its s3 port +1000..+1002 and each of those +10000 for gRPC: all of it
# stays below the kernel's ephemeral range (32768 up), where an outgoing connection
# could take a port first (seen once: "address already in use" on 39334), and clear of
# the shared stack's (8333, 9333-9335 and the same +10000).
SEAWEED = tuple(SECOND_STACK["s3"] + d for d in (1000, 1001, 1002, 10000, 11000, 11001, 11002))
FIXED = frozenset({*SECOND_STACK.values(), SECOND_STACK["kafka"] + 1, NO_KAFKA, NO_KAFKA + 1,
                   *SEAWEED})
LEASES = Path(tempfile.gettempdir()) / "auth-kappa-test-ports.json"
LEASE_SECONDS = 300.0   # a service binds its ports well within this


def free_ports(count: int, start: int, also: tuple[int, ...] = ()) -> int:
    """First port p >= start with p..p+count-1 all free (Kafka needs port and port+1),
    and p+a.. for each offset a in `also` (a cluster's controllers, the SASL listeners).

    Test processes run side by side (pytest -n 2), so a port free now may be taken by
    another's service starting meanwhile: ports handed out are leased in a file, under a
    lock, and no other process gets them until the lease ends. Callers keep every port
    (a Redis Cluster's bus ports, +10000, too) below the kernel's ephemeral range
    (32768 up), where a client's outgoing connection could take it first."""
    with open(LEASES.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        now = time.time()
        try:
            leased = {int(k): t for k, t in json.loads(LEASES.read_text()).items() if t > now}
        except (OSError, ValueError):
            leased = {}
        p = start
        while True:
            ports = [p + a + i for a in (0, *also) for i in range(count)]
            if not any(q in leased or q in FIXED for q in ports) and all(map(_free, ports)):
                break
            p += count + 1
        leased.update(dict.fromkeys(ports, now + LEASE_SECONDS))
        LEASES.write_text(json.dumps(leased))
    return p


@dataclass
class Services:
    """One private Kafka and Redis; the chaos faults signal them by their own pids."""

    brokers: int = 1
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="auth-chaos-")))
    config: Config = field(init=False)

    def __post_init__(self) -> None:
        redis = free_ports(1, start=24000)
        if self.brokers == 1:
            kafka = f"127.0.0.1:{free_ports(2, start=23000, also=(SASL_OFFSET,))}"
        else:
            base = free_ports(self.brokers, start=25000, also=(CONTROLLER_OFFSET, SASL_OFFSET))
            kafka = ",".join(f"127.0.0.1:{base + i}" for i in range(self.brokers))
        self.config = Config.load(env={}, kafka=kafka, kafka_brokers=self.brokers,
                                  redis_url=f"redis://127.0.0.1:{redis}/0",
                                  stack_dir=str(self.root),
                                  cache_dir=str(ROOT / ".cache"))
        self.redis = RedisServer(self.config)   # appendonly yes, appendfsync everysec
        self.kafka = PrivateKafka(self.config) if self.brokers == 1 else \
            PrivateCluster(self.config, nodes=self.brokers)

    @property
    def brokers_up(self) -> list[KafkaBroker]:
        """Each Kafka node (one for a single broker), to kill one by its own pid."""
        return self.kafka.members if isinstance(self.kafka, KafkaCluster) else [self.kafka]

    @property
    def env(self) -> dict[str, str]:
        """What a worker, the simulator or replay needs to use these services."""
        return {"AUTH_KAFKA": self.config.kafka, "AUTH_REDIS_URL": self.config.redis_url}

    def start(self) -> None:
        for svc in (self.redis, self.kafka):
            if not svc.answering():
                svc.start()

    def heal(self) -> None:
        """After a run that failed midway: continue what a fault froze, start what is down."""
        for svc in (self.redis, *self.brokers_up):
            self.resume(svc)
        self.start()

    def stop(self) -> None:
        for svc in (*self.brokers_up, self.redis):
            self.resume(svc)
        if self.brokers > 1:   # throwaway data: a cluster missing a node shuts down slowly
            for b in self.brokers_up:
                if b.own_pid():
                    self.kill(b)
        for svc in (self.kafka, self.redis):
            svc.stop()

    def pid(self, svc: RedisServer | KafkaBroker) -> int:
        pid = svc.own_pid()
        if pid is None:
            raise RuntimeError(f"private {svc.name} is not running")
        return pid

    def kill(self, svc: RedisServer | KafkaBroker) -> None:
        """kill -9 by its own pid, and wait until it is gone."""
        pid = self.pid(svc)
        os.kill(pid, signal.SIGKILL)
        while process.is_alive(pid):
            time.sleep(0.05)

    def restart(self, svc: RedisServer | KafkaBroker) -> float:
        """Start again from its data dir (Redis: the AOF); seconds until it answered."""
        t0 = time.monotonic()
        svc.start()
        return time.monotonic() - t0

    def freeze(self, svc: RedisServer | KafkaBroker) -> None:
        os.kill(self.pid(svc), signal.SIGSTOP)

    def resume(self, svc: RedisServer | KafkaBroker) -> None:
        pid = svc.own_pid()
        if pid is not None:
            os.kill(pid, signal.SIGCONT)
