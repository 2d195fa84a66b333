"""Faust workers on a Redis Cluster (3 primaries, 3 replicas): exact with workers joining
and killed under a backlog, and through a primary's kill -9 and its replica's takeover."""

from __future__ import annotations

import os
import signal
import time

import pytest
import redis

from tests.support.live import LiveCase, Streaming, assert_windows_exact

pytestmark = [pytest.mark.stack, pytest.mark.slow]
UTILS = ("electricity", "gas", "water")
ARGS = ["--meters", "300", "--duration", "10m", "--duplicate-fraction", "0.01"]


@pytest.fixture
def case(stack, redis_cluster, tmp_path, unique):
    c = LiveCase(f"cl{unique}", tmp_path, extra_env=redis_cluster.env)
    c.create_topics()
    yield c
    c.cleanup()


def _paced(case: LiveCase, seed: str) -> Streaming:
    """At 30x event time (10 minutes in 20 s); the same readings go to CSV files first,
    for the brute force."""
    case.simulate(*ARGS, "--seed", seed, to="files")
    return Streaming(case, *ARGS, "--seed", seed, pace="30x")


def _target(manifest: dict) -> dict[str, int]:
    return {u: manifest["utilities"][u]["messages"] for u in UTILS}


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
    sim = _paced(case, "31")
    _wait_committed(case, 10_000)
    case.start_worker()          # two join while the stream flows
    case.start_worker()
    case.wait_for_log("assigned [(", workers=4)
    case.kill(case.workers[0])   # one of the first two, mid-stream: SIGKILL
    assert sim.is_alive(), "killed after the stream ended: too late to matter"
    _exact(case, _target(sim.manifest()))
    assert sum("recovered from" in log or "assigned [(" in log for log in case.logs()) >= 4


def test_a_primary_killed_mid_stream_fails_over_and_stays_exact(case, redis_cluster):
    """The replica misses the primary's last acknowledged checkpoints for sure: it is
    frozen and cut off (CLIENT KILL TYPE replica) while the worker goes on committing,
    then the primary is killed -9 and the replica, thawed, takes over without them."""
    case.start_worker()
    case.wait_for_log("assigned [(", workers=1)
    sim = _paced(case, "32")
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
        _exact(case, _target(sim.manifest()))
        log = "\n".join(case.logs())
        assert "store failure" in log, "the worker never saw the failover"
        assert "Redis lost acknowledged checkpoints" in log and "'gas:0'" in log, \
            "the replica was expected to miss the last checkpoints of gas:0"
        print(f"failover: slots served again after {took_over:.1f} s")
    finally:
        redis_cluster.up()   # the killed node comes back as a replica
