"""The fault matrix: what each fault does to which stream, and the defects it exposes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.chaos import faults
from tests.chaos.harness import Run, Scenario


@dataclass(frozen=True)
class Fault:
    name: str
    what: str
    scenario: Callable[[bool], Scenario]      # fast -> the stream it runs against
    inject: Callable[[Run], None] | None = None
    defects: str = ""                         # issue 9 defects it exposes, e.g. "#2"
    check_final: bool = False                 # windows must also reach `windows` (final)
    settle: float = 0.0                       # seconds to wait before scoring
    pytest: str | None = None                 # measured by an existing test instead
    fast_kwargs: dict = field(default_factory=dict)
    brokers: int = 1                          # Kafka nodes it needs (3: replicated topics)


def _sc(fast: bool, **kw) -> Scenario:
    base = {"meters": 100 if fast else 300, "duration": "2m" if fast else "6m", "pace": "10x",
            "workers": 2}
    return Scenario(**{**base, **kw})


def _skew_start() -> str:
    return str(int(time.time()) - 1800)   # half an hour before the wall clock


FAULTS: dict[str, Fault] = {f.name: f for f in [
    Fault("worker-kill9", "kill -9 of the only worker, 5 times at random moments "
          "(restarted by the supervisor)",
          lambda fast: _sc(fast, workers=1), faults.kill_workers, "#5"),
    Fault("worker-kill9-pair", "kill -9 of one of two workers, 5 times at random moments "
          "(restarted by the supervisor; the group rebalances each time)",
          lambda fast: _sc(fast), faults.kill_workers, "#2 #5"),
    Fault("worker-sigstop", "a worker SIGSTOPped past its session timeout (6 s + 8 s), "
          "then SIGCONT: it must be fenced",
          lambda fast: _sc(fast, duration="3m" if fast else "6m"), faults.freeze_worker, "#2"),
    Fault("churn", "1 -> 3 -> 2 -> 1 workers while a backlog drains",
          lambda fast: _sc(fast, meters=400 if fast else 1500, duration="10m", pace="max",
                           workers=1, env={"AUTH_BATCH_SIZE": "2000"}),
          faults.churn, "#2"),
    Fault("broker-kill9", "the Kafka broker killed -9 mid-stream, restarted 3 s later",
          lambda fast: _sc(fast, duration="3m" if fast else "6m"), faults.kill_broker, "#2 #3"),
    Fault("broker-kill9-replicated", "3 Kafka brokers (replication 3, min.insync.replicas "
          "2): the leader of most partitions killed -9 mid-stream and left down",
          lambda fast: _sc(fast, duration="3m" if fast else "6m"), faults.kill_leader_broker,
          brokers=3),
    Fault("redis-kill9", "Redis killed -9 mid-stream and restarted from its AOF "
          "(appendfsync everysec)", lambda fast: _sc(fast), faults.kill_redis, "#3"),
    Fault("redis-sigstop", "Redis frozen (SIGSTOP) for 30 s, then SIGCONT",
          lambda fast: _sc(fast, duration="3m" if fast else "6m"), faults.freeze_redis, "#3"),
    Fault("empty-partitions", "all readings on partition 0 of 4 (AUTH_IDLE_TIMEOUT 5s); "
          "windows must still become final",
          lambda fast: _sc(fast, simulate=False, workers=1,
                           env={"AUTH_IDLE_TIMEOUT": "5s"}),
          faults.empty_partitions, "#1", check_final=True, settle=12.0),
    Fault("partitions-added", "topics grow 4 -> 6 partitions mid-stream; new meters stream "
          "to the new partitions", lambda fast: _sc(fast, duration="3m" if fast else "6m"),
          faults.add_partitions, "#1 #2"),
    Fault("clock-skew", "4 meters with clocks +-20 h off stream next to the fleet "
          "(+20 h: quarantined `future`; -20 h: late)",
          lambda fast: _sc(fast, start=_skew_start()), faults.clock_skew, "#6"),
    Fault("fuzz", "hostile messages (tests/chaos/fuzz.py, safe variants) mixed into the "
          "stream: 15k fast, 100k full",
          lambda fast: _sc(fast), None, "#7 #8"),
    Fault("s3-down", "S3 unreachable for 60 s (tests/test_archive.py, shared stack)",
          lambda fast: _sc(fast),
          pytest="tests/test_archive.py::test_s3_outage_buffers_pauses_and_recovers_without_loss"),
    Fault("rebuild-switch", "`replay rebuild` (archive in a private bucket of the shared "
          "S3) and the switch to v2 while two workers stream; no late readings, since a "
          "replay counts what the live path routed late",
          lambda fast: _sc(fast, archive=True, late=0.0, duration="3m" if fast else "6m"),
          faults.rebuild, "#4"),
]}


def injector(fault: Fault, fast: bool) -> Callable[[Run], None]:
    if fault.name == "fuzz":
        return lambda run: faults.fuzz(run, 15_000 if fast else 100_000)
    return fault.inject or (lambda run: None)
