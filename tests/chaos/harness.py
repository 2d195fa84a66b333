"""One chaos scenario end to end: topics, workers, a paced stream, a fault, then the score.

The harness is the workers' supervisor too: a worker that exits is started again (as
systemd or Kubernetes would), and the restarts are reported.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.chaos import compare
from tests.chaos.services import ROOT, Services
from tests.chaos.truth import UTILITIES, compute, read_topics
from tests.support.live import LiveCase


@dataclass
class Scenario:
    """The stream and the workers a fault runs against."""

    meters: int = 300
    duration: str = "4m"
    pace: str = "10x"
    seed: int = 1
    workers: int = 1
    frame_size: int | None = None
    late: float = 0.01
    late_delay: str = "3m"        # well past 60 s + grace: late under any batching
    duplicates: float = 0.01
    malformed: float = 0.005
    partitions: int = 4
    archive: bool = False         # archive to a private bucket (shared S3); namespace v1
    simulate: bool = True         # False: the fault produces the stream itself
    start: str | None = None      # simulator --start (default: its fixed 2026-03-02)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def stream_seconds(self) -> float:
        from auth_kappa.config import parse_duration

        pace = 1e9 if self.pace == "max" else float(self.pace.rstrip("x"))
        return parse_duration(self.duration) / pace


class OffsetMonitor(threading.Thread):
    """Polls the committed offsets (Redis) so time to recover can be measured afterwards."""

    def __init__(self, url: str, group: str, namespace: str | None, pointer: str) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self.group, self.namespace, self.pointer = group, namespace, pointer
        self.samples: list[tuple[float, dict[str, int]]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                ns = self.namespace or (self.client.get(self.pointer) or b"v1").decode()
                raw = self.client.hgetall(f"auth:{ns}:offsets:{self.group}")
                self.samples.append((time.monotonic(),
                                     {k.decode(): int(v) for k, v in raw.items()}))
            except redis.RedisError:
                pass
            self.stopped.wait(0.25)

    def recovery(self, since: float, over: float, ends: dict[str, int]) -> float | None:
        """Seconds from the fault (`since`) until every partition that still had data to
        read when it was over (`over`: the service back, the worker resumed) committed
        past where it stood then (None: nothing was left to read)."""
        before = [s for t, s in self.samples if t <= over]
        at = before[-1] if before else {}
        pending = {p for p, end in ends.items() if at.get(p, 0) < end}
        if not pending:
            return None
        for t, snap in self.samples:
            if t > over and all(snap.get(p, 0) > at.get(p, 0) for p in pending):
                return t - since
        return float("inf")


class Run:
    """A scenario on the private services: its own prefix, group and Redis namespace."""

    def __init__(self, services: Services, scenario: Scenario, workdir: Path, name: str) -> None:
        self.services, self.scenario = services, scenario
        self.name = f"ch{name.replace('-', '')[:10]}{uuid.uuid4().hex[:6]}"
        self.workdir = workdir / self.name
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {**services.env, "AUTH_IDLE_TIMEOUT": "1h", "AUTH_SESSION_TIMEOUT": "6s",
               "AUTH_PARTITIONS": str(scenario.partitions), **scenario.env}
        if scenario.archive:   # readers and workers follow a pointer a rebuild can move
            env.update({"AUTH_ARCHIVE": "1", "AUTH_S3_BUCKET": self.name,
                        "AUTH_ARCHIVE_ROLL_SECONDS": "1", "AUTH_NAMESPACE": "",
                        "AUTH_POINTER": f"auth:{self.name}:pointer"})
        self.case = LiveCase(self.name, self.workdir, extra_env=env)
        self.slots: list[subprocess.Popen] = []
        self.restarts = 0
        self.faults: list[list[float]] = []  # [began, over] per fault (monotonic)
        self.manifests: list[dict] = []
        self.streams: list[tuple[subprocess.Popen, Path]] = []
        self.producers: list = []
        c = self.case.config
        self.monitor = OffsetMonitor(c.redis_url, self.name, c.namespace, c.pointer)
        self.log: list[str] = []
        self.election_s: float | None = None   # set by a fault that kills a leader
        self.t0 = time.monotonic()

    # ---- set-up
    def store(self):
        """The window store the readers see (following the pointer when there is one)."""
        from auth_kappa.state.redis_store import RedisWindowStore

        c = self.case.config
        return RedisWindowStore.connect(c.redis_url, c.namespace, c.window_specs(),
                                        group=self.name, pointer=c.pointer)

    def begin(self) -> None:
        if self.scenario.archive:
            from tests.support.archive import make_bucket

            make_bucket(self.case.config)
            redis.Redis.from_url(self.case.config.redis_url).set(self.case.config.pointer,
                                                                 f"{self.name}-v1")
        self.case.create_topics(self.scenario.partitions)
        self.monitor.start()
        for _ in range(self.scenario.workers):
            self.slots.append(self.case.start_worker())
        self.case.wait_for_log("assigned [(", workers=self.scenario.workers, timeout=120)

    def simulate(self, *extra: str, out: str = "sim", pace: str | None = None,
                 seed: int | None = None) -> subprocess.Popen:
        """Start the simulator into our topics (returns at once)."""
        s = self.scenario
        args = ["--meters", str(s.meters), "--duration", s.duration,
                "--seed", str(s.seed if seed is None else seed), "--pace", pace or s.pace,
                "--late-fraction", str(s.late), "--late-delay", s.late_delay,
                "--duplicate-fraction", str(s.duplicates),
                "--malformed-fraction", str(s.malformed)]
        if s.frame_size:
            args += ["--frame-size", str(s.frame_size)]
        if s.start:
            args += ["--start", s.start]
        path = self.workdir / out
        proc = subprocess.Popen(
            [sys.executable, "-m", "auth_kappa.cli.main", "simulate", "--to", "kafka",
             "--out", str(path), "--quiet", "--topic-prefix", f"{self.name}-", *args, *extra],
            env=self.case.env, cwd=ROOT, stdout=subprocess.DEVNULL,
            stderr=open(self.workdir / f"{out}.err", "wb"))
        self.streams.append((proc, path))
        return proc

    # ---- during the run
    def note(self, text: str) -> None:
        self.log.append(f"{time.monotonic() - self.t0:6.1f}s {text}")

    def supervise(self) -> None:
        """Restart any worker that exited (a supervisor's job), except stopped ones."""
        for i, w in enumerate(self.slots):
            if w.poll() is not None:
                self.note(f"worker pid {w.pid} exited ({w.returncode}); restarting it")
                self.restarts += 1
                self.slots[i] = self.case.start_worker()

    def sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.supervise()
            time.sleep(min(0.2, left))

    def fault(self) -> None:
        """The fault begins (and, unless fault_over follows, is over at once)."""
        now = time.monotonic()
        self.faults.append([now, now])

    def fault_over(self) -> None:
        self.faults[-1][1] = time.monotonic()

    def signal_worker(self, i: int, sig: int) -> int:
        pid = self.slots[i].pid
        os.killpg(pid, sig)
        return pid

    def add_worker(self) -> None:
        self.slots.append(self.case.start_worker())

    def remove_worker(self) -> None:
        """A clean leave (SIGTERM), as a scale-in would do."""
        w = self.slots.pop()
        os.killpg(w.pid, signal.SIGTERM)
        try:
            w.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(w.pid, signal.SIGKILL)

    def committed_total(self) -> int:
        try:
            return sum(self.store().offsets().values())
        except redis.RedisError:
            return -1

    # ---- the end
    def ends(self) -> dict[str, int]:
        from confluent_kafka import Consumer, TopicPartition

        c = Consumer({"bootstrap.servers": self.services.config.kafka, "group.id": "chaos-ends"})
        try:
            meta = c.list_topics(timeout=30).topics
            out = {}
            for u in UTILITIES:
                topic = f"{self.name}-{u}"
                for p in meta[topic].partitions if topic in meta else ():
                    hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
                    if hi:
                        out[f"{u}:{p}"] = hi
            return out
        finally:
            c.close()

    def drain(self, timeout: float = 240) -> dict[str, int]:
        """Wait for the streams, then until the committed offsets reach every partition's end."""
        for proc, path in self.streams:
            while proc.poll() is None:
                self.sleep(0.5)
            if proc.returncode != 0:
                err = (self.workdir / f"{path.name}.err").read_text(errors="replace")
                self.note(f"simulator exited {proc.returncode}: {err.strip()[-300:]}")
            if (path / "manifest.json").exists():
                self.manifests.append(json.loads((path / "manifest.json").read_text()))
        for p in self.producers:
            if errors := p.join():
                self.note(f"injector: {errors} messages not delivered")
        deadline = time.monotonic() + timeout
        ends = self.ends()
        while time.monotonic() < deadline:
            try:
                done = self.store().offsets()
            except redis.RedisError:
                done = {}
            if all(done.get(p, 0) >= end for p, end in ends.items()):
                return ends
            self.sleep(0.5)
            ends = self.ends()
        self.note(f"not caught up after {timeout:.0f}s: {done} < {ends}")
        return ends

    def score(self, ends: dict[str, int], check_final: bool = False) -> compare.Score:
        time.sleep(2.0)   # side outputs leave right after the checkpoint
        kafka = self.services.config.kafka
        records = read_topics(kafka, {u: f"{self.name}-{u}" for u in UTILITIES})
        truth = compute(records, self.case.config.grace)
        sc = compare.compare_windows(truth, self.store(), seed=self.scenario.seed)
        side = {t: read_topics(kafka, {t: f"{self.name}-{t}"}) for t in ("late", "quarantine")}
        compare.compare_late(sc, truth, side["late"])
        compare.compare_quarantine(sc, truth, side["quarantine"])
        if self.manifests:
            compare.compare_manifest(sc, truth, self.manifests)
        if check_final:
            sc.not_final, due = not_final(truth, read_topics(kafka, {"w": f"{self.name}-windows"}),
                                          self.case.config.grace)
            sc.notes.append(f"{due - sc.not_final} of {due} due 1-minute meter windows final")
        recoveries = [self.monitor.recovery(t, over, ends) for t, over in self.faults]
        known = [r for r in recoveries if r is not None]
        sc.recover_s = max(known) if known else None
        sc.election_s = self.election_s
        sc.notes += self.log
        if self.restarts:
            sc.notes.append(f"supervisor restarted {self.restarts} worker(s)")
        return sc

    def close(self) -> None:
        self.monitor.stopped.set()
        for w in self.case.workers:   # scored already: no need for a clean shutdown
            if w.poll() is None:
                os.killpg(w.pid, signal.SIGKILL)
                w.wait(30)
        for proc, _ in self.streams:
            if proc.poll() is None:
                proc.kill()
        try:
            self._drop_state()
        except redis.RedisError:
            pass
        from auth_kappa.kafka_admin import delete_topics

        delete_topics(self.services.config.kafka, contains=self.name)


    def _drop_state(self) -> None:
        from auth_kappa.state.redis_store import RedisWindowStore

        c = self.case.config
        client = redis.Redis.from_url(c.redis_url)
        spaces = [c.namespace] if c.namespace else [f"{self.name}-v{i}" for i in range(1, 5)]
        for ns in spaces:
            RedisWindowStore(client, ns, c.window_specs()).drop_namespace()
        if self.scenario.archive:
            from tests.support.archive import drop_bucket

            client.delete(c.pointer)
            drop_bucket(c)


def not_final(truth, window_records, grace: float) -> tuple[int, int]:
    """1-minute meter windows that ended before the partition's high - grace but never
    reached the `windows` topic (their watermark was held back)."""
    import pyarrow as pa
    import pyarrow.ipc as ipc

    published = set()
    for rec in window_records:
        if rec.headers.get("size") != b"60":
            continue
        try:
            t = ipc.open_stream(pa.py_buffer(rec.value)).read_all().to_pydict()
        except (pa.ArrowException, OSError):
            continue
        for u, k, ws in zip(t["utility"], t["key"], t["window_start"], strict=True):
            published.add((u, k, int(ws)))
    high = {u: max((h for (uu, _), h in truth.highs.items() if uu == u), default=0)
            for u in UTILITIES}
    missing = due = 0
    for u in UTILITIES:
        for (sid, ws) in truth.windows[("meter", u, 60)]:
            if ws + 60 + grace <= high[u]:
                due += 1
                missing += (u, sid, ws) not in published
    return missing, due


def execute(services: Services, scenario: Scenario, inject, workdir: Path, name: str,
            check_final: bool = False, settle: float = 0.0) -> compare.Score:
    """Run one fault: workers up, stream, inject(run), drain, score, clean up."""
    run = Run(services, scenario, workdir, name)
    t_start = time.monotonic()
    try:
        run.begin()
        run.t0 = time.monotonic()
        if scenario.simulate:
            run.simulate()
        inject(run)
        ends = run.drain()
        run.sleep(settle)
        sc = run.score(ends, check_final)
    finally:
        run.close()
    sc.notes.append(f"run took {time.monotonic() - t_start:.0f}s")
    return sc
