"""Fault injectors. Each takes the running scenario (harness.Run), acts while the stream
flows, marks when its fault began (run.fault()), and returns once the fault is over.

Workers are signalled by their own pids (their process groups), services by the pids
of the private services: nothing else on the machine is touched.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter

from tests.chaos.harness import Run
from tests.chaos.produce import Out, PacedProducer, file_messages
from tests.chaos.services import ROOT

SIM_START = 1772409600  # the simulator's default --start, 2026-03-02T00:00:00Z


def _at(run: Run, fraction: float) -> None:
    """Sleep (supervising) until `fraction` of the stream's wall time has passed."""
    run.sleep(max(0.0, run.t0 + fraction * run.scenario.stream_seconds - time.monotonic()))


def kill_workers(run: Run, times: int = 5) -> None:
    """kill -9 of a random worker at random moments (some land inside a checkpoint)."""
    rng = random.Random(run.scenario.seed)
    for moment in sorted(rng.uniform(0.1, 0.9) for _ in range(times)):
        _at(run, moment)
        i = rng.randrange(len(run.slots))
        run.fault()
        run.note(f"kill -9 worker pid {run.signal_worker(i, signal.SIGKILL)}")
        run.sleep(0.3)  # the supervisor starts a new one


def freeze_worker(run: Run, extra: float = 8.0) -> None:
    """SIGSTOP one of two workers past its session timeout, then SIGCONT: it must be fenced."""
    _at(run, 0.25)
    run.fault()
    pid = run.signal_worker(0, signal.SIGSTOP)
    run.note(f"SIGSTOP worker pid {pid}")
    run.sleep(run.case.config.session_timeout + extra)
    run.signal_worker(0, signal.SIGCONT)
    run.fault_over()
    run.note(f"SIGCONT worker pid {pid}")


def churn(run: Run) -> None:
    """1 -> 3 -> 2 -> 1 workers while a backlog drains."""
    proc, _ = run.streams[0]
    while proc.poll() is None:
        run.sleep(0.2)
    total = sum(run.ends().values())
    run.note(f"backlog of {total:,} messages; workers 1 -> 3")

    def until(fraction: float) -> None:
        while 0 <= run.committed_total() < fraction * total:
            run.sleep(0.2)
    until(0.1)
    run.fault()
    run.add_worker()
    run.add_worker()
    until(0.4)
    run.note(f"committed {run.committed_total():,}; workers 3 -> 2")
    run.fault()
    run.remove_worker()
    until(0.65)
    run.note(f"committed {run.committed_total():,}; workers 2 -> 1")
    run.fault()
    run.remove_worker()


def kill_broker(run: Run, down: float = 3.0) -> None:
    _at(run, 0.35)
    run.fault()
    run.services.kill(run.services.kafka)
    run.note("broker kill -9")
    run.sleep(down)
    took = run.services.restart(run.services.kafka)
    run.fault_over()
    run.note(f"broker answering again after {took:.1f}s")


def kill_leader_broker(run: Run) -> None:
    """kill -9 the node leading most of the stream's partitions, and leave it down: its
    partitions' leadership moves to the in-sync replicas (replication 3, min ISR 2)."""
    _at(run, 0.35)
    victim = _busiest_leader(run)
    run.fault()
    t0 = time.monotonic()
    run.services.kill(victim)
    run.note(f"broker {victim.name} (leader of most partitions) kill -9; left down")
    while victim.node in _leaders(run) and time.monotonic() - t0 < 60:
        run.sleep(0.2)
    run.election_s = time.monotonic() - t0
    run.note(f"every partition led by a live broker after {run.election_s:.1f}s")


def _leaders(run: Run) -> Counter:
    """Partitions of this run's topics per leading node."""
    from confluent_kafka.admin import AdminClient

    meta = AdminClient({"bootstrap.servers": run.services.config.kafka}).list_topics(timeout=15)
    return Counter(p.leader for t, tm in meta.topics.items() if t.startswith(run.name)
                   for p in tm.partitions.values())


def _busiest_leader(run: Run):
    leads = _leaders(run)
    node = leads.most_common(1)[0][0] if leads else 1
    return next(b for b in run.services.brokers_up if b.node == node)


def kill_redis(run: Run) -> None:
    _at(run, 0.4)
    run.fault()
    run.services.kill(run.services.redis)
    run.note("redis kill -9")
    took = run.services.restart(run.services.redis)
    run.fault_over()
    run.note(f"redis restarted from its AOF in {took:.1f}s")


def freeze_redis(run: Run, seconds: float = 30.0) -> None:
    _at(run, 0.2)
    run.fault()
    run.services.freeze(run.services.redis)
    run.note(f"redis SIGSTOP for {seconds:.0f}s")
    run.sleep(seconds)
    run.services.resume(run.services.redis)
    run.fault_over()
    run.note("redis SIGCONT")


def _sim_files(run: Run, out: str, *args: str) -> dict:
    import json

    path = run.workdir / out
    subprocess.run([sys.executable, "-m", "auth_kappa.cli.main", "simulate", "--to", "files",
                    "--out", str(path), "--quiet", *args], env=run.case.env, cwd=ROOT,
                   check=True, timeout=300)
    return json.loads((path / "manifest.json").read_text())


def _sim_args(run: Run) -> list[str]:
    s = run.scenario
    return ["--meters", str(s.meters), "--duration", s.duration, "--seed", str(s.seed),
            "--late-fraction", str(s.late), "--late-delay", s.late_delay,
            "--duplicate-fraction", str(s.duplicates), "--malformed-fraction", str(s.malformed)]


def empty_partitions(run: Run) -> None:
    """Every reading on partition 0 of 4; the other three never see data."""
    manifest = _sim_files(run, "sim-files", *_sim_args(run))
    run.manifests.append(manifest)
    speed = float(run.scenario.pace.rstrip("x"))
    msgs = file_messages(run.workdir / "sim-files", f"{run.name}-", lambda key: 0)
    run.producers.append(PacedProducer(run.services.config.kafka, msgs, speed).start())


def add_partitions(run: Run, to: int = 6) -> None:
    """Topics grow 4 -> 6 mid-stream; new meters then stream to the new partitions."""
    from confluent_kafka.admin import AdminClient, NewPartitions

    from auth_kappa.topology.partitioner import partitions_of

    s = run.scenario
    speed = float(s.pace.rstrip("x"))
    _at(run, 0.4)
    start = SIM_START + int((time.monotonic() - run.t0) * speed) // 5 * 5
    rest = max(60, int(s.stream_seconds * speed) - (start - SIM_START))
    _sim_files(run, "sim-new", "--meters", str(max(20, s.meters // 3)), "--seed",
               str(s.seed + 100), "--start", str(start), "--duration", f"{rest}s")
    admin = AdminClient({"bootstrap.servers": run.services.config.kafka})
    run.fault()
    futures = admin.create_partitions(
        [NewPartitions(f"{run.name}-{u}", to) for u in ("electricity", "gas", "water")])
    for f in futures.values():
        f.result(30)
    run.note(f"partitions 4 -> {to}")
    extra = to - s.partitions

    def new_partition(key: bytes) -> int:
        return s.partitions + int(partitions_of([key], extra)[0])
    msgs = file_messages(run.workdir / "sim-new", f"{run.name}-", new_partition,
                         tag="partitions-added")
    run.producers.append(PacedProducer(run.services.config.kafka, msgs, speed).start())


def clock_skew(run: Run, meters: int = 4, hours: float = 20.0) -> None:
    """A few meters whose clocks are +-20 h off send readings next to the real fleet.
    The stream starts 30 min before the wall clock, so +20 h is far in the future."""
    s = run.scenario
    start = int(s.start)
    rng = random.Random(s.seed)
    out = []
    for m in range(meters):
        sid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        skew = int(hours * 3600) * (1 if m % 2 == 0 else -1)
        state = rng.choice(["CA", "TX", "NY", "WA"])
        for t in range(start + 5, start + int(s.stream_seconds * float(s.pace.rstrip("x"))), 5):
            end = t + skew
            line = f"{sid},Skewed Meter {m},household,{end - 5},{state},0.125000,{end}"
            for u in ("electricity", "gas", "water"):
                out.append(Out(f"{run.name}-{u}", line.encode(), sid.encode(), None, t,
                               (("chaos", b"skew"),)))
    out.sort(key=lambda o: o.event_ts)
    run.fault()
    run.producers.append(PacedProducer(run.services.config.kafka, out,
                                       float(s.pace.rstrip("x"))).start())


def fuzz(run: Run, count: int = 100_000) -> None:
    """Hostile messages (tests/chaos/fuzz.py) mixed into the valid traffic over the stream.
    The variants fuzz.KNOWN_DEFECTS lists (some crash a worker for good) are left out here;
    tests/test_fuzz.py holds them as xfails."""
    import time as _time

    from tests.chaos import fuzz as fuzzgen

    s = run.scenario
    span = s.stream_seconds * float(s.pace.rstrip("x"))
    out = []
    for utility in ("electricity", "gas", "water"):
        for i, h in enumerate(fuzzgen.safe(count // 3, s.seed, utility, _time.time())):
            out.append(Out(f"{run.name}-{utility}", h.value, h.key, None,
                           SIM_START + span * i / (count // 3), (("chaos", b"fuzz"),)))
    out.sort(key=lambda o: o.event_ts)
    run.fault()
    run.producers.append(PacedProducer(run.services.config.kafka, out,
                                       float(s.pace.rstrip("x"))).start())


def rebuild(run: Run) -> None:
    """`replay rebuild` from the archive into v2, then the switch, while two workers stream."""
    _at(run, 0.4)
    run.fault()
    proc = subprocess.run([sys.executable, "-m", "auth_kappa.cli.main", "replay", "rebuild",
                           "--from", "2026-03-02T00:00:00Z", "--quiet"], env=run.case.env,
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    run.fault_over()
    last = (proc.stderr.strip().splitlines() or [""])[-1][:200]
    run.note(f"replay rebuild exited {proc.returncode}: {last}")
