"""Faust workers on a Redis Cluster (3 primaries, 3 replicas): exact with workers joining
and killed under a backlog, and through a primary's kill -9 and its replica's takeover."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import redis

from tests.support.live import LiveCase, assert_windows_exact

pytestmark = [pytest.mark.stack, pytest.mark.slow]
UTILS = ("electricity", "gas", "water")
ARGS = ["--meters", "300", "--duration", "10m", "--duplicate-fraction", "0.01"]


@pytest.fixture
def case(stack, redis_cluster, tmp_path, unique):
    c = LiveCase(f"cl{unique}", tmp_path, extra_env=redis_cluster.env)
    c.create_topics()
    yield c
    c.cleanup()


class Paced(threading.Thread):
    """The simulator producing to Kafka at 30x event time (10 minutes in 20 s), so the
    faults land mid-stream; the same readings go to CSV files for the brute force."""

    def __init__(self, case: LiveCase, seed: str) -> None:
        super().__init__(daemon=True)
        self.case, self.seed, self.target = case, seed, {}
        case.simulate(*ARGS, "--seed", seed, to="files")

    def run(self) -> None:
        m = self.case.simulate(*ARGS, "--seed", self.seed, "--pace", "30x")
        self.target = {u: m["utilities"][u]["messages"] for u in UTILS}

    def done(self) -> dict[str, int]:
        self.join(timeout=120)
        assert self.target, "the simulator did not finish"
        return self.target


def _wait_committed(case: LiveCase, n: int) -> None:
    deadline = time.monotonic() + 120
    while sum(case.committed().values()) < n:
        assert time.monotonic() < deadline, case.log_tail()
        time.sleep(0.05)


def _exact(case: LiveCase, manifest_target: dict[str, int]) -> None:
    case.wait_until(manifest_target, timeout=240)
    store = case.store()
    assert store.cluster
    assert assert_windows_exact(store, case.workdir / "sim-files", UTILS, meters=100) > 600


def test_four_workers_joining_and_killed_mid_stream_stay_exact(case):
    case.start_worker()
    case.start_worker()
    case.wait_for_log("assigned [(", workers=2)
    sim = Paced(case, "31")
    sim.start()
    _wait_committed(case, 10_000)
    case.start_worker()          # two join while the stream flows
    case.start_worker()
    case.wait_for_log("assigned [(", workers=4)
    case.kill(case.workers[0])   # one of the first two, mid-stream: SIGKILL
    assert sim.is_alive(), "killed after the stream ended: too late to matter"
    _exact(case, sim.done())
    assert sum("recovered from" in log or "assigned [(" in log for log in case.logs()) >= 4


def test_a_primary_killed_mid_stream_fails_over_and_stays_exact(case, redis_cluster):
    """The replica misses the primary's last acknowledged checkpoints for sure: it is
    frozen and cut off (CLIENT KILL TYPE replica) while the worker goes on committing,
    then the primary is killed -9 and the replica, thawed, takes over without them."""
    case.start_worker()
    case.wait_for_log("assigned [(", workers=1)
    sim = Paced(case, "32")
    sim.start()
    _wait_committed(case, 20_000)
    victim = redis_cluster.primary_of("{gas:0}")
    replica = redis_cluster.replica_of(victim)
    pids = {port: redis_cluster.pid(port) for port in (victim, replica)}
    primary = redis.Redis(port=victim)
    key = case.store().keys.progress("offsets", "gas:0")
    os.kill(pids[replica], signal.SIGSTOP)
    try:
        primary.execute_command("CLIENT", "KILL", "TYPE", "replica")
        cut = int(primary.hget(key, "gas:0"))
        deadline = time.monotonic() + 30
        while int(primary.hget(key, "gas:0")) == cut:   # acknowledged, never replicated
            assert time.monotonic() < deadline, case.log_tail()
            time.sleep(0.05)
        os.kill(pids[victim], signal.SIGKILL)
    finally:
        os.kill(pids[replica], signal.SIGCONT)
    killed_at = time.monotonic()
    try:
        assert sim.is_alive(), "killed after the stream ended: too late to matter"
        redis_cluster.wait_primary("{gas:0}", replica)
        took_over = time.monotonic() - killed_at
        _exact(case, sim.done())
        log = "\n".join(case.logs())
        assert "store failure" in log, "the worker never saw the failover"
        assert "Redis lost acknowledged checkpoints" in log and "'gas:0'" in log, \
            "the replica was expected to miss the last checkpoints of gas:0"
        print(f"failover: slots served again after {took_over:.1f} s")
    finally:
        redis_cluster.up()   # the killed node comes back as a replica
