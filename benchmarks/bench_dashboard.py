"""Dashboard API latency with 200 concurrent clients while the live path runs at full rate,
and reading-to-screen latency.

Kafka, Redis, the worker, the dashboard and this load generator share this machine. The
benchmark starts its own redis-server so other people's tests on the shared stack do not
enter the figures; Kafka is the stack's. Two dashboards read that one Redis: "primary"
answers households from memory kept by the checkpoints' change stream
(dashboards/changes.py), "direct" has that view off (a Redis round trip per page).

1. the registry of --meters goes into Redis, and --backlog of readings (event time) into
   fresh Kafka topics (Arrow frames);
2. catch-up: a Faust worker (production command) drains that backlog flat out; the
   primary dashboard reads every meter once (its cold reads), then both are measured;
3. steady streams: the simulator continues the same fleet at each of --paces (N times
   real time: --meters x 3 utilities / 5 s x N readings/s; 2x, 5x, 10x of 25,000 meters
   = 30k, 75k, 150k/s, the last the original's claimed ~150K messages/s) and the worker
   keeps up; the first pace also runs the baselines and saturation;
4. phases of --seconds: --clients clients on keep-alive connections (benchmarks/
   http_load.py; the reading-to-screen probe's page and SSE stream on aiohttp); "paced"
   clients send one request every --interval s from a random phase (a live page's
   refresh), "closed" ones back to back (saturation).
   - mixed (the target): 90 % household summaries of random meters (signed links), 10 %
     fleet map/totals (operator token);
   - household only: ours, then two baselines on the same clients: naive = one Redis round
     trip per window (252 per page), engine = Engine.connect().windows() per slot
     (HGETALL + pandas) in the thread pool; same JSON through the same code;
   Latency is client-side (send to last byte). A probe PINGs the Redis the dashboard
   reads every 5 ms: its p99 shows how long Redis itself was busy (the worker's
   checkpoint transactions are atomic, MULTI/EXEC, and Redis runs one command at a time).
   During each steady pace's primary phase probe meters get a reading every 0.1 s and
   its arrival on the household API and SSE stream is timed (reading-to-screen).
5. cleanup: the private Redis servers, topics, ACL user.

  auth-kappa stack up && .venv/bin/python benchmarks/bench_dashboard.py       # ~6 min
  .venv/bin/python benchmarks/bench_dashboard.py --meters 5000 --seconds 6 --no-write

Writes its section of benchmarks/README.md. Exit 2 if a goal of issue 14 is missed (p99 <=
5 ms at steady 2x and 10x and <= 1.5x the idle p99; reading-to-screen p99 <= 1 s at 2x).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import pandas as pd  # noqa: E402
import redis  # noqa: E402
import redis.asyncio as aredis  # noqa: E402
import uvloop  # noqa: E402

from auth_kappa.config import Config, parse_duration  # noqa: E402
from auth_kappa.kafka_admin import delete_topics, ensure_topics  # noqa: E402
from auth_kappa.stack.kafka_broker import KafkaBroker  # noqa: E402
from auth_kappa.state.redis_store import RedisWindowStore  # noqa: E402
from auth_kappa.topology.schema import UTILITIES  # noqa: E402
from benchmarks.http_load import Connection  # noqa: E402
from benchmarks.report import cpu_model, write_section  # noqa: E402
from benchmarks.sched_floor import wake_delays  # noqa: E402
from dashboards import acl, cpu_priority, registry  # noqa: E402
from dashboards.auth import Access  # noqa: E402
from simulators.spec import DEFAULT_START, parse_start  # noqa: E402

PY = sys.executable
TARGET_P99_MS, IDLE_RATIO, SCREEN_P99_MS = 5.0, 1.5, 1000.0   # issue 14's goals
ALONE = "reading-to-screen alone (no other clients)"
STRAGGLE_SECONDS = 10.0   # how long after a phase its unseen probe readings are awaited
PROBE_METERS = 10       # reading-to-screen, per pace: 10 readings/s from pace 1x up
SETTLE_SECONDS, SETTLED_LAG = 30.0, 12   # a steady pace is measured once the worker is
                                        # this close (messages) to the stream's end
SWEEP_SECONDS = 600.0   # at most, for the phase that reads every meter once
TOKEN = "bench-operator-token-" + uuid.uuid4().hex
# The worker sends a checkpoint's final windows as one message on <prefix>windows; for
# thousands of meters that exceeds Kafka's 1 MB default and the worker stops (the same
# workaround as bench_worker.py): larger limits on that topic and the worker's producer.
SIDE_OUTPUT_BYTES = 64 << 20
ROUTES = {"ours": "/api/meters/", "naive": "/bench/naive/meters/",
          "engine": "/bench/engine/meters/"}
HOT_ROUTES = ("/api/meters/{service_id}", "/api/fleet/states", "/api/fleet/summary")


@dataclass
class Phase:
    scenario: str       # "catch-up" | "steady"
    name: str
    route: str          # "ours" | "naive" | "engine"
    mix: float          # share of household requests (rest: fleet)
    mode: str           # "paced" | "closed"
    store: str = "primary"
    latencies: dict[str, list[float]] = field(default_factory=dict)
    pings: list[float] = field(default_factory=list)
    # (time, electricity:0's committed offset) as the ping probe read it: its checkpoints
    checkpoints: list[tuple[float, int]] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)   # sched_floor.py's wake delays, s
    # the load generator's own wake delays (20 ms timers on its loop), s: a response waits
    # that long to be read, and the client-side latency counts it
    client_lag: list[float] = field(default_factory=list)
    # the dashboard's own time per hot request (its /metrics histogram, this phase):
    # cumulative counts per bucket bound, s
    app: dict[float, float] = field(default_factory=dict)
    errors: int = 0
    seconds: float = 0.0
    worker_rate: float = 0.0
    lag: int = 0        # messages the worker still had to read at the end of the phase
    cpu: dict[str, float] = field(default_factory=dict)
    # the serving loop's waits for a core: (s waited per s, mean wait per scheduling, s)
    waited: tuple[float, float] = (math.nan, math.nan)
    probe: bool = False  # also measure reading-to-screen (the probe meters' readings)
    clients: int | None = None   # None: --clients
    pace: float = 1.0    # the stream's pace (times real time) while it runs
    screen: dict[str, list[float]] = field(default_factory=dict)   # "API" | "SSE" -> s
    unseen: dict[str, list[str]] = field(default_factory=dict)     # the readings never seen
    view: dict[str, float] = field(default_factory=dict)   # the view's counters, this phase

    def all(self) -> np.ndarray:
        return np.concatenate([np.asarray(v) for v in self.latencies.values()] or [[]])


# ---- processes
def start(cmd: list[str], env: dict[str, str], log: Path, serving: bool = False
          ) -> subprocess.Popen:
    with open(log, "wb") as fh:
        return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True,
                                preexec_fn=_serving_side if serving else _normal_priority)


_NICE = os.getpriority(os.PRIO_PROCESS, 0)   # as started, before any --serve-nice
# --split-cores: the serving side (dashboards, their floor probe, this load generator) on
# SERVE_CPUS, the live path (Kafka, Redis, worker, simulator) on INGEST_CPUS
SERVE_CPUS: set[int] = set()
INGEST_CPUS: set[int] = set()


def _child_on(cpus: set[int]) -> Callable[[], None]:
    """A child's preexec: the priority this process started with, whatever --serve-nice
    gave it (unchanged, this is allowed to any user), on `cpus` if split."""
    def preexec() -> None:
        os.setpriority(os.PRIO_PROCESS, 0, _NICE)
        if cpus:
            os.sched_setaffinity(0, cpus)
    return preexec


_normal_priority = _child_on(INGEST_CPUS)   # the live path's children
_serving_side = _child_on(SERVE_CPUS)       # the dashboards and their floor probe


def pin_threads(pid: int, cpus: set[int]) -> None:
    """Every thread of a running process (Kafka's JVM) onto `cpus`; threads it starts
    later inherit it from theirs."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(task.name), cpus)


def stop(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_delay(pid: int) -> tuple[float, int]:
    """(seconds, wakes): how long the process's main thread (the dashboard's serving loop)
    has waited on a run queue while runnable, and how often it was scheduled
    (/proc/<pid>/task/<pid>/schedstat)."""
    try:
        _, waited, slices = Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()
    except (OSError, ValueError):
        return 0.0, 0
    return int(waited) / 1e9, int(slices)


def stolen() -> float:
    """CPU seconds the hypervisor ran something else on this VM's cores (/proc/stat
    steal): invisible as any process here, yet every process waits for it."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


def all_cpu() -> dict[int, float]:
    """CPU seconds of every process: the rest of the machine (Kafka, anyone else)."""
    return {int(d.name): cpu_seconds(int(d.name)) for d in Path("/proc").iterdir()
            if d.name.isdigit()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_server(port: int, home: Path, replica_of: int | None = None) -> subprocess.Popen:
    """A private redis-server as the stack runs it (listpack hashes), without persistence."""
    home.mkdir(parents=True, exist_ok=True)
    cmd = [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind",
           "127.0.0.1", "--daemonize", "no", "--dir", str(home), "--save", "",
           "--appendonly", "no", "--hash-max-listpack-entries", "512",
           "--repl-diskless-sync-delay", "0"]
    if replica_of:
        cmd += ["--replicaof", "127.0.0.1", str(replica_of)]
    proc = start(cmd, dict(os.environ), home / "redis.log")
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(redis.ConnectionError):
            info = client.info("replication")
            if not replica_of or info.get("master_link_status") == "up":
                return proc
        if time.monotonic() > deadline or proc.poll() is not None:
            sys.exit(f"bench: redis-server on {port} did not start; see {home / 'redis.log'}")
        time.sleep(0.2)


def committed(store: RedisWindowStore) -> int:
    return sum(store.offsets().values())


def accepted(store: RedisWindowStore) -> int:
    """Readings the worker counted (the stats hash its checkpoints publish)."""
    return int(sum(v for k, v in store.stats().items() if k.startswith("accepted:")))


def end_offsets(config: Config) -> int:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": config.kafka, "group.id": "bench-dashboard-probe"})
    try:
        total = 0
        for topic in config.source_topics:
            for p in c.list_topics(topic, timeout=15).topics[topic].partitions:
                total += c.get_watermark_offsets(TopicPartition(topic, p), timeout=15)[1]
        return total
    finally:
        c.close()


def create_topic(kafka: str, name: str, partitions: int, config: dict[str, str]) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": kafka})
    if name not in admin.list_topics(timeout=15).topics:
        for fut in admin.create_topics([NewTopic(name, partitions, 1, config=config)]).values():
            fut.result(timeout=30)


def wait_healthy(base: str, server: subprocess.Popen, log: Path) -> None:
    import urllib.request

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"bench: dashboard exited; see {log}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(base + "/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        time.sleep(0.2)
    sys.exit(f"bench: dashboard not healthy; see {log}")


# ---- load
async def client(conn: Connection, base: str, phase: Phase, meters: list[str],
                 sigs: dict[str, str], interval: float, until: float, seed: int) -> None:
    rnd = random.Random(seed)
    household = rnd.random() < phase.mix
    op = f"Authorization: Bearer {TOKEN}\r\n".encode()
    nxt = time.perf_counter() + rnd.random() * interval
    if phase.mode == "paced":
        await asyncio.sleep(max(0.0, nxt - time.perf_counter()))
    sweep = meters if phase.mode == "sweep" else None   # one iterator for all: each once
    while time.perf_counter() < until:
        headers = b""
        if sweep is not None:
            sid = next(sweep, None)
            if sid is None:
                break
            kind, path = "household", f"{ROUTES[phase.route]}{sid}?sig={sigs[sid]}"
        elif household:
            sid = rnd.choice(meters)   # another household each time: no help from the cache
            kind, path = "household", f"{ROUTES[phase.route]}{sid}?sig={sigs[sid]}"
        elif rnd.random() < 0.5:
            kind, headers = "fleet states", op
            path = (f"/api/fleet/states?utility={rnd.choice(UTILITIES)}"
                    f"&range={rnd.choice(('hour', 'day'))}")
        else:
            kind, path, headers = "fleet summary", "/api/fleet/summary", op
        t0 = time.perf_counter()
        try:
            ok = await conn.get(path, headers) == 200
        except (OSError, ValueError):
            ok = False
            conn.close()
            conn = await Connection.open(base)
        t1 = time.perf_counter()
        if ok:
            phase.latencies.setdefault(kind, []).append(t1 - t0)
        else:
            phase.errors += 1
        if phase.mode == "paced":
            nxt += interval
            await asyncio.sleep(max(0.0, nxt - time.perf_counter()))
    conn.close()


@dataclass
class Probe:
    """Meters of the benchmark's own (registered, read by no one else), one reading every
    `every` s in all, produced to Kafka at the fleet's event time, then timed until the
    value is on the household API (each meter polled in turn, `poll` s apart) and on the
    meter's SSE stream. A meter takes one reading per second of event time (a second
    reading of the same second is a duplicate), so a phase at pace P uses ceil(1 / (every
    x P)) of them: the readings never run ahead of the fleet's clock, which the page only
    shows up to. Each phase takes meters no phase used before: a day's count on the page
    must hold only this phase's readings."""

    sids: list[str]
    sigs: list[str]
    kafka: str
    topic: str
    highs_key: str
    state: str = "NY"
    every: float = 0.1
    poll: float = 0.02
    taken: int = 0       # meters used by earlier phases

    def take(self, pace: float) -> list[int]:
        """This phase's meters (indexes into sids)."""
        k = max(1, math.ceil(1 / (self.every * pace) - 1e-9))
        if self.taken + k > len(self.sids):
            raise RuntimeError("bench: out of reading-to-screen probe meters")
        self.taken += k
        return list(range(self.taken - k, self.taken))


async def reading_to_screen(base: str, redis_url: str, probe: Probe, phase: Phase,
                            session: aiohttp.ClientSession, until: float) -> None:
    """Produce time -> first time the household's electricity card counts the reading:
    "today.count" of the reading's local day, one meter's readings of a day counted in
    send order."""
    from confluent_kafka import Producer

    from auth_kappa import timezones

    zone = timezones.zone_of(probe.state)
    mine = probe.take(phase.pace)
    k = len(mine)
    # per probe meter: (wall clock at produce, local date, end_ts) of each reading, in
    # send order
    sent: list[list[tuple[float, str, int]]] = [[] for _ in range(k)]
    seen: dict[str, dict[tuple[int, int], float]] = {"API": {}, "SSE": {}}
    shown: dict[str, dict[int, dict]] = {"API": {}, "SSE": {}}   # each meter's last card

    def mark(where: str, m: int, summary: dict, t: float) -> None:
        shown[where][m] = card = summary["utilities"]["electricity"]
        today = card["today"]
        that_day = [i for i, (_, d, _) in enumerate(sent[m]) if d == today["date"]]
        for i in that_day[:today["count"]]:
            seen[where].setdefault((m, i), t)

    async def produce() -> None:
        producer = Producer({"bootstrap.servers": probe.kafka, "linger.ms": 0})
        r = aredis.Redis.from_url(redis_url)
        last = [0] * k
        try:
            n = 0
            while time.perf_counter() < until - 1.0:   # the last second: time to arrive
                highs = await r.hgetall(probe.highs_key)
                newest = max((int(v) for f, v in highs.items()
                              if f.decode().rsplit(":", 1)[0] == "electricity"), default=0)
                m, n = n % k, n + 1
                end = last[m] = max(newest, last[m] + 1)   # a new second of this meter
                sid = probe.sids[mine[m]]
                line = f"{sid},probe,household,{end - 5},{probe.state},0.125,{end}"
                sent[m].append((time.time(), timezones.local_date(end, zone).isoformat(), end))
                producer.produce(probe.topic, key=sid.encode(), value=line.encode())
                producer.poll(0)
                await asyncio.sleep(probe.every)
            producer.flush(5)
        finally:
            await r.aclose()

    def url(m: int, stream: bool = False) -> str:
        return (f"{base}/api/meters/{probe.sids[mine[m]]}{'/stream' if stream else ''}"
                f"?sig={probe.sigs[mine[m]]}")

    def waiting(where: str, m: int) -> bool:
        """Go on: the phase runs, or (up to STRAGGLE_SECONDS after it) a reading of
        meter m is not seen yet, so its latency is measured, not guessed."""
        now = time.perf_counter()
        return now < until or (now < until + STRAGGLE_SECONDS and any(
            (m, i) not in seen[where] for i in range(len(sent[m]))))

    async def api() -> None:
        m = 0
        while any(waiting("API", j) for j in range(k)):
            if waiting("API", m):
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(url(m)) as resp:
                        if resp.status == 200:
                            mark("API", m, json.loads(await resp.read()), time.time())
                await asyncio.sleep(probe.poll)
            m = (m + 1) % k

    async def sse(m: int) -> None:
        with contextlib.suppress(TimeoutError, aiohttp.ClientError):
            async with session.get(url(m, stream=True)) as resp:
                event = None
                while waiting("SSE", m):
                    line = await asyncio.wait_for(
                        resp.content.readline(),
                        max(0.01, until + STRAGGLE_SECONDS - time.perf_counter()))
                    text = line.decode().rstrip("\n")
                    if text.startswith("event: "):
                        event = text[7:]
                    elif text.startswith("data: ") and event == "summary":
                        mark("SSE", m, json.loads(text[6:]), time.time())

    await asyncio.gather(produce(), api(), *(sse(m) for m in range(k)))
    for where, times in seen.items():
        phase.screen[where] = [times[key] - sent[key[0]][key[1]][0] for key in sorted(times)]
    phase.screen["sent"] = [float(sum(map(len, sent)))]
    for where in seen:   # what a reading never seen was, and what its page showed last
        phase.unseen[where] = [
            f"meter {m} reading {i} (end_ts {sent[m][i][2]}, {sent[m][i][1]}): the page's last "
            f"card had clock {shown[where].get(m, {}).get('clock')}, today "
            f"{shown[where].get(m, {}).get('today', {}).get('count')} readings of "
            f"{shown[where].get(m, {}).get('today', {}).get('date')}"
            for m in range(k) for i in range(len(sent[m])) if (m, i) not in seen[where]]
    phase.screen["meters"] = [float(k)]


async def ping_probe(url: str, offsets: str, phase: Phase, until: float,
                     done: asyncio.Event) -> None:
    """Until `done` (not cancelled: a redis-py command cancelled mid-read can leave its
    client's close waiting forever). The probe is an HGET of one partition's committed
    offset (as cheap as a PING), so it also sees when that partition's checkpoints land."""
    c = aredis.Redis.from_url(url)
    try:
        while time.perf_counter() < until and not done.is_set():
            t0 = time.perf_counter()
            n = await c.hget(offsets, "electricity:0")
            t1 = time.perf_counter()
            phase.pings.append(t1 - t0)
            phase.checkpoints.append((t1, int(n or 0)))
            await asyncio.sleep(0.02)   # not faster: a probe must not load what it measures
    finally:
        await c.aclose()


def checkpoint_gaps(seen: list[tuple[float, int]]) -> list[float]:
    """Seconds between consecutive checkpoints of the probed partition, from the offsets
    the probe read ~20 ms apart (one partition's checkpoints are further apart)."""
    gaps: list[float] = []
    at, last = None, seen[0][1] if seen else 0   # at: when the last step was seen
    for t, n in seen:
        if n > last:
            if at is not None:
                gaps.append(t - at)
            at = t
        last = n
    return gaps


async def run_phase(base: str, redis_url: str, phase: Phase, meters: list[str],
                    sigs: dict[str, str], clients: int, interval: float, seconds: float,
                    probe: Probe | None = None, offsets: str = "") -> None:
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        # open the connections first: the measurement is steady state, not TCP handshakes
        conns = await asyncio.gather(*(Connection.open(base) for _ in range(clients)))
        t0 = time.perf_counter()
        until = t0 + seconds
        which = iter(meters) if phase.mode == "sweep" else meters
        screen = asyncio.ensure_future(reading_to_screen(base, redis_url, probe, phase,
                                                         session, until)) \
            if probe is not None and phase.probe else None
        done = asyncio.Event()   # a sweep ends when every meter was read, before `until`
        pinger = asyncio.ensure_future(ping_probe(redis_url, offsets, phase, until, done))
        # this process's own wake delays beside the clients, as sched_floor.py measures
        # the machine's: a response that arrives while this loop is busy is read late
        lag = asyncio.ensure_future(wake_delays(
            phase.client_lag, lambda: time.perf_counter() >= until or done.is_set()))
        await asyncio.gather(*(client(conn, base, phase, which, sigs, interval, until, i)
                               for i, conn in enumerate(conns)))
        if screen is not None:   # the phase lasts its time, with or without clients
            await asyncio.sleep(max(0.0, until - time.perf_counter()))
        phase.seconds = time.perf_counter() - t0
        done.set()
        await pinger
        await lag
        if screen is not None:   # its stragglers, measured after the load stopped
            await screen


def app_buckets(metrics: str) -> dict[float, float]:
    """Cumulative request counts per latency bound (s) of the hot API routes, from the
    dashboard's /metrics histogram (its TimingMiddleware: handler and send, no queueing
    before the request reaches the app)."""
    out: dict[float, float] = {}
    for line in metrics.splitlines():
        if line.startswith("auth_dashboard_request_seconds_bucket") and \
                any(f'route="{r}"' in line for r in HOT_ROUTES):
            le = line.split('le="')[1].split('"')[0]
            bound = math.inf if le == "+Inf" else float(le)
            out[bound] = out.get(bound, 0.0) + float(line.split()[-1])
    return out


def bucket_pct(cumulative: dict[float, float], q: float) -> float:
    """A percentile (ms) from cumulative bucket counts, linear within its bucket (as
    Prometheus's histogram_quantile); inf past the last finite bound."""
    bounds = sorted(cumulative)
    total = cumulative[bounds[-1]] if bounds else 0.0
    if total <= 0:
        return float("nan")
    rank, lo, below = q / 100 * total, 0.0, 0.0
    for b in bounds:
        if cumulative[b] >= rank:
            if math.isinf(b):
                return math.inf
            inside = cumulative[b] - below
            return 1000 * (lo + (b - lo) * ((rank - below) / inside if inside else 1.0))
        lo, below = b, cumulative[b]
    return math.inf


def app_within(ph: Phase) -> float:
    """The share of hot requests the dashboard itself served within the goal's 5 ms."""
    total = max(ph.app.values(), default=0.0)
    return ph.app.get(TARGET_P99_MS / 1000, 0.0) / total if total > 0 else math.nan


def app_text(ph: Phase) -> str:
    return "-" if math.isnan(app_within(ph)) else \
        f"{bucket_pct(ph.app, 99):.1f} ({app_within(ph):.1%})"


def pct(values: np.ndarray | list, q: float) -> float:
    values = np.asarray(values)
    return float(np.percentile(values, q) * 1000) if len(values) else float("nan")


@dataclass
class Rig:
    """What the phases need: dashboards per store, the worker, the meters and their links."""

    args: argparse.Namespace
    config: Config
    store: RedisWindowStore
    worker: subprocess.Popen
    bases: dict[str, str]               # "primary" | "direct" -> dashboard URL
    urls: dict[str, str]                # "primary" | "direct" -> Redis URL it reads
    servers: dict[str, subprocess.Popen]
    meters: list[str]
    sigs: dict[str, str]
    redis_pids: dict[str, int] = field(default_factory=dict)
    probe: Probe | None = None

    def measure(self, phase: Phase) -> Phase:
        a0, t0 = accepted(self.store), time.perf_counter()
        metrics = metrics_text(self.bases[phase.store])
        v0, app0 = view_counters(metrics), app_buckets(metrics)
        pids = {"worker": self.worker.pid, "dashboard": self.servers[phase.store].pid,
                "load generator": os.getpid(), **{f"redis {k}": v for k, v in
                                                  self.redis_pids.items()}}
        cpu0, all0, steal0 = {k: cpu_seconds(v) for k, v in pids.items()}, all_cpu(), stolen()
        wait0 = run_delay(pids["dashboard"])
        gc.collect()
        gc.freeze()   # the instrument's own GC pauses are not the dashboard's latency
        floor = subprocess.Popen([PY, "benchmarks/sched_floor.py", self.args.cpu_priority],
                                 cwd=ROOT,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 preexec_fn=_serving_side)
        uvloop.run(run_phase(self.bases[phase.store], self.urls[phase.store], phase,
                              self.meters, self.sigs,
                              self.args.clients if phase.clients is None else phase.clients,
                              self.args.interval,
                              SWEEP_SECONDS if phase.mode == "sweep" else self.args.seconds,
                              self.probe, self.store.keys.progress("offsets")))
        dt = time.perf_counter() - t0
        phase.floor = json.loads(floor.communicate(b"", timeout=30)[0])
        metrics = metrics_text(self.bases[phase.store])
        v1 = view_counters(metrics)
        phase.app = {b: n - app0.get(b, 0.0) for b, n in app_buckets(metrics).items()}
        phase.view = {k: v1[k] - v0.get(k, 0) if k.endswith("_total") else v1[k] for k in v1}
        phase.worker_rate = (accepted(self.store) - a0) / dt
        phase.lag = max(0, end_offsets(self.config) - committed(self.store))
        phase.cpu = {k: (cpu_seconds(pid) - cpu0[k]) / dt for k, pid in pids.items()}
        waited, slices = (b - a for a, b in zip(wait0, run_delay(pids["dashboard"]), strict=True))
        phase.waited = (waited / dt, waited / slices if slices else math.nan)
        used = sum(cpu - all0.get(pid, 0.0) for pid, cpu in all_cpu().items())
        phase.cpu["everything else"] = used / dt - sum(phase.cpu.values())
        phase.cpu["stolen by the host"] = (stolen() - steal0) / dt
        lat = phase.all()
        print(f"bench: [{phase.scenario}] {phase.name} ({phase.store}): "
              f"{len(lat) / phase.seconds:,.0f} req/s, p50 {pct(lat, 50):.2f} ms, p99 "
              f"{pct(lat, 99):.2f} ms, errors {phase.errors}, Redis PING p99/max "
              f"{pct(phase.pings, 99):.1f}/{pct(phase.pings, 100):.0f} ms, floor p99 "
              f"{pct(phase.floor, 99):.1f} ms, in the app p99 {bucket_pct(phase.app, 99):.1f} ms, "
              f"load generator lag p99 {pct(phase.client_lag, 99):.1f} ms, dashboard waited for a "
              f"core {1000 * phase.waited[0]:.0f} ms/s ({1000 * phase.waited[1]:.2f} ms a wake), "
              f"worker {phase.worker_rate:,.0f} readings/s, "
              f"lag {phase.lag:,} messages, checkpoints apart {gaps_text(phase)}", flush=True)
        if phase.view:
            print(f"bench:   view: {view_text(phase)}", flush=True)
        for where in ("API", "SSE"):
            if where in phase.screen:
                print(f"bench:   reading-to-screen on the {where}: {screen_text(phase, where)}",
                      flush=True)
        return phase


def metrics_text(base: str) -> str:
    import urllib.request

    req = urllib.request.Request(base + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read().decode()


def view_counters(metrics: str) -> dict[str, float]:
    """The dashboard's view counters (/metrics): meters held, hits, loads, resets."""
    out = {}
    for line in metrics.splitlines():
        if line.startswith("auth_dashboard_view_"):
            name, value = line.split()
            out[name.removeprefix("auth_dashboard_view_")] = float(value)
    return out


def view_text(phase: Phase) -> str:
    v = phase.view
    asked = v.get("hits_total", 0) + v.get("loads_total", 0)
    if not v:
        return "off (every household read asks Redis)"
    return (f"{v['hits_total'] / max(1, asked):.1%} of household reads from memory, "
            f"{v['loads_total']:,.0f} read in from Redis, {v['resets_total']:,.0f} resets "
            f"({v.get('reloaded_total', 0):,.0f} meters read in again), "
            f"{v['meters']:,.0f} meters held"
            + (f"; notices reach it {1000 * v['notice_age_seconds_total'] / v['notices_total']:.0f}"
               f" ms after their checkpoint on average (max so far "
               f"{1000 * v['notice_age_seconds_max']:.0f} ms)" if v.get("notices_total") else ""))


def gaps_text(phase: Phase) -> str:
    gaps = checkpoint_gaps(phase.checkpoints)
    return f"{pct(gaps, 50):.0f} / {pct(gaps, 100):.0f} ms" if gaps else "none"


def screen_text(phase: Phase, where: str) -> str:
    lat, sent = phase.screen[where], int(phase.screen["sent"][0])
    missed = phase.unseen.get(where, [])
    return (f"{len(lat)} of {sent} readings seen, p50 {pct(lat, 50):.0f} ms, p99 "
            f"{pct(lat, 99):.0f} ms, max {pct(lat, 100):.0f} ms"
            + (f" (not seen: {'; '.join(missed[:3])}{' ...' if len(missed) > 3 else ''})"
               if missed else ""))


# ---- main
def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--meters", type=int, default=25_000)
    p.add_argument("--backlog", default="15m", help="event time drained flat out (catch-up)")
    p.add_argument("--paces", default="2x,5x,10x",
                   help="steady stream paces (simulate --pace), the first also runs baselines")
    p.add_argument("--frame-size", type=int, default=500)
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--interval", type=float, default=0.5, help="paced clients: s per request")
    p.add_argument("--seconds", type=float, default=12.0, help="per phase")
    p.add_argument("--no-write", action="store_true", help="do not update benchmarks/README.md")
    p.add_argument("--skip-baselines", action="store_true",
                   help="only our phases (no naive/engine baselines, no saturation)")
    p.add_argument("--serve-nice", type=int, default=0,
                   help="CPU priority (nice; below 0 needs root) of the dashboards and this "
                        "load generator: how much of the p99 is the shared cores' scheduling")
    p.add_argument("--split-cores", action="store_true",
                   help="the dashboards and this load generator on the last core, the live "
                        "path (Kafka's threads, Redis, worker, simulator) on the others: the "
                        "dashboard on a host of its own, as deployed")
    p.add_argument("--cpu-priority", choices=cpu_priority.MODES, default="auto",
                   help="the dashboards' (AUTH_DASHBOARD_CPU_PRIORITY), their floor probe's and "
                        "this load generator's, which stands for browsers on other machines "
                        "(default auto: real-time when permitted, as `auth-kappa dashboard`)")
    args = p.parse_args()
    # a kill or a timeout still stops the servers it started (the finally below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.priority_said = cpu_priority.claim(args.cpu_priority)   # the dashboards get the same
    print(f"bench: load generator CPU priority {args.priority_said}", flush=True)
    if args.serve_nice:
        os.setpriority(os.PRIO_PROCESS, 0, args.serve_nice)
    kafka_pid = None
    if args.split_cores:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            sys.exit("bench: --split-cores needs at least 2 cores")
        SERVE_CPUS.add(cpus[-1])
        INGEST_CPUS.update(cpus[:-1])
        os.sched_setaffinity(0, SERVE_CPUS)
        kafka_pid = KafkaBroker(Config.load()).own_pid()
        if kafka_pid is None:
            sys.exit("bench: --split-cores pins this stack's Kafka; run `auth-kappa stack up`")
        pin_threads(kafka_pid, INGEST_CPUS)
    if not shutil.which("redis-server"):
        sys.exit("bench_dashboard: redis-server not found; run `auth-kappa stack up` once")

    name = f"bd{uuid.uuid4().hex[:8]}"
    work = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    ports = {"primary": free_port()}
    procs: dict[str, subprocess.Popen] = {}
    phases: list[Phase] = []
    config = None
    try:
        procs["redis"] = redis_server(ports["primary"], work / "redis")
        primary = f"redis://127.0.0.1:{ports['primary']}/0"
        env = {**os.environ, "AUTH_REDIS_URL": primary,
               "AUTH_DASHBOARD_CPU_PRIORITY": args.cpu_priority, "AUTH_TOPIC_PREFIX": f"{name}-",
               "AUTH_GROUP": name, "AUTH_NAMESPACE": name, "AUTH_OPERATOR_TOKEN": TOKEN,
               "AUTH_ARCHIVE": "0", "PRODUCER_MAX_REQUEST_SIZE": str(SIDE_OUTPUT_BYTES)}
        config = Config.load(env=env)
        ensure_topics(config.kafka, config.source_topics, config.partitions)
        create_topic(config.kafka, config.prefixed("windows"), config.partitions,
                     {"max.message.bytes": str(SIDE_OUTPUT_BYTES)})
        sim = [PY, "-m", "auth_kappa.cli.main", "simulate", "--meters", str(args.meters),
               "--seed", "3", "--to", "kafka", "--frame-size", str(args.frame_size),
               "--topic-prefix", f"{name}-", "--quiet"]
        print(f"bench: backlog of {args.meters:,} meters x {args.backlog} into Kafka", flush=True)
        subprocess.run([*sim, "--duration", args.backlog, "--out", str(work / "sim")],
                       env=env, cwd=ROOT, check=True, preexec_fn=_normal_priority)
        manifest = json.loads((work / "sim" / "manifest.json").read_text())
        backlog = sum(manifest["utilities"][u]["readings"] for u in UTILITIES)
        fleet = registry.read_registry(work / "sim" / "registry.parquet")
        probe_sids = [str(uuid.uuid4())   # reading-to-screen's, PROBE_METERS per pace
                      for _ in range(PROBE_METERS * len(args.paces.split(",")))]
        registry.load(redis.Redis.from_url(primary),
                      [*fleet, *({**fleet[0], "service_id": sid, "user_name": "probe",
                                  "type": "household", "state": "NY"} for sid in probe_sids)])
        users = {}
        users["primary"] = acl.create_user(primary, "dashboard", "bench-" + name)
        users["direct"] = users["primary"]
        store = RedisWindowStore.connect(primary, config.namespace, config.window_specs(),
                                         group=config.group)
        procs["worker"] = start([PY, "-m", "faust", "-A", "auth_kappa.app", "worker", "-l",
                                 "warn", "--without-web"], env, work / "worker.log")
        deadline = time.monotonic() + 120
        while committed(store) == 0:
            if procs["worker"].poll() is not None or time.monotonic() > deadline:
                sys.exit(f"bench: the worker did not commit; see {work / 'worker.log'}")
            time.sleep(0.2)
        bases = {}
        # primary: household reads from the view the change stream keeps (the fleet in
        # memory); direct: the same primary, every household read a Redis round trip
        reads = {"primary": {"AUTH_DASHBOARD_REDIS_URL": users["primary"],
                             "AUTH_DASHBOARD_WATCH_METERS": str(args.meters + 1000)},
                 "direct": {"AUTH_DASHBOARD_REDIS_URL": users["primary"],
                            "AUTH_DASHBOARD_WATCH_METERS": "0"}}
        for store_name, extra in reads.items():
            port = free_port()
            procs[f"dashboard-{store_name}"] = start(
                [PY, "benchmarks/dashboard_server.py", "--port", str(port)], {**env, **extra},
                work / f"dashboard-{store_name}.log", serving=True)
            bases[store_name] = f"http://127.0.0.1:{port}"
            wait_healthy(bases[store_name], procs[f"dashboard-{store_name}"],
                         work / f"dashboard-{store_name}.log")
            if args.serve_nice:
                os.setpriority(os.PRIO_PROCESS, procs[f"dashboard-{store_name}"].pid,
                               args.serve_nice)
        meters = pd.read_parquet(work / "sim" / "registry.parquet")["service_id"].tolist()
        access = Access.from_env(env=env)
        rig = Rig(args, config, store, procs["worker"], bases, users,
                  {k: procs[f"dashboard-{k}"] for k in reads}, meters,
                  {s: access.sign(s) for s in meters},
                  {"primary": procs["redis"].pid},
                  Probe(probe_sids, [access.sign(s) for s in probe_sids], config.kafka,
                        config.prefixed("electricity"),
                        store.keys.highs))
        for store_name in reads:
            uvloop.run(run_phase(bases[store_name], primary, Phase("", "warm-up", "ours",
                                                                     0.9, "paced"),
                                 meters, rig.sigs, args.clients, args.interval, 2.0))
        # 1. catch-up: the worker drains the backlog flat out; the view's dashboard reads
        # every meter once first (each one read in from Redis: its cold misses)
        phases.append(rig.measure(Phase("catch-up", "first read of each meter (cold)", "ours",
                                        1.0, "sweep")))
        for store_name in reads:
            phases.append(rig.measure(Phase("catch-up", "mixed", "ours", 0.9, "paced",
                                            store_name)))
        if phases[-1].lag == 0:
            print("bench: the backlog ran out during catch-up; use a longer --backlog")
        while committed(store) < end_offsets(config):
            time.sleep(0.5)
        # 2. steady streams: the same fleet continues in event time at each --paces
        begin = int(parse_start(DEFAULT_START) + parse_duration(args.backlog))
        paces = args.paces.split(",")
        for i, pace in enumerate(paces):
            label = f"steady {pace}"
            factor = float(pace.rstrip("x"))
            steady = [Phase(label, "mixed", "ours", 0.9, "paced", store_name,
                            probe=store_name == "primary", pace=factor)
                      for store_name in reads]
            # reading-to-screen with no other clients: a household page (API and SSE) is
            # all the dashboard serves, the rest of the machine is the live path
            steady.append(Phase(label, ALONE, "ours", 1.0, "paced", probe=True,
                                pace=factor, clients=0))
            if i == 0 and not args.skip_baselines:
                steady += [
                    Phase(label, "household summary", "ours", 1.0, "paced"),
                    Phase(label, "baseline naive: one round trip per window", "naive", 1.0,
                          "paced"),
                    Phase(label, "baseline engine: Engine.connect().windows()", "engine",
                          1.0, "paced"),
                    Phase(label, "household summary, back to back (saturation)", "ours",
                          1.0, "closed")]
            span = int((len(steady) * (args.seconds + 5) + 20) * factor)
            procs["simulator"] = start([*sim, "--duration", f"{span}s", "--start", str(begin),
                                        "--pace", pace, "--out", str(work / f"sim-{pace}")],
                                       env, work / f"simulator-{pace}.log")
            begin += span
            time.sleep(8)  # the stream is flowing; then the worker catches up with it
            settle = time.monotonic() + SETTLE_SECONDS
            while end_offsets(config) - committed(store) > SETTLED_LAG and \
                    time.monotonic() < settle:
                time.sleep(0.5)
            if end_offsets(config) - committed(store) > SETTLED_LAG:
                print(f"bench: the worker is {end_offsets(config) - committed(store):,} "
                      f"messages behind the {pace} stream after {SETTLE_SECONDS:.0f} s more")
            for phase in steady:
                phases.append(rig.measure(phase))
            stop(procs.pop("simulator"))
            while committed(store) < end_offsets(config):   # drained before the next pace
                time.sleep(0.5)
        # 3. reference: the same load with the live path idle (caught up, no stream)
        time.sleep(3)
        for store_name in reads:
            phases.append(rig.measure(Phase("idle", "mixed", "ours", 0.9, "paced",
                                            store_name)))
    finally:
        for key in ("simulator", "dashboard-primary", "dashboard-direct", "worker", "redis"):
            stop(procs.get(key))
        if config is not None:
            with contextlib.suppress(Exception):
                delete_topics(config.kafka, contains=name)
        shutil.rmtree(work, ignore_errors=True)
        if kafka_pid is not None:
            pin_threads(kafka_pid, set(range(os.cpu_count() or 1)))
    return report(phases, args, backlog)


def pace_rate(args: argparse.Namespace, pace: str) -> float:
    return args.meters * len(UTILITIES) / 5 * float(pace.rstrip("x"))


SPLIT_TEXT = """ **--split-cores**: the dashboards, their floor probe and this load
generator on the last core, Kafka's threads, the private Redis, the worker and the
simulator on the others: a dashboard on a host of its own, as deployed (with 2 cores the
live path has one, so only the slower paces keep up)."""


def report(phases: list[Phase], args: argparse.Namespace, backlog: int) -> int:
    first = f"steady {args.paces.split(',')[0]}"
    head = next(ph for ph in phases if ph.scenario == first and ph.name == "mixed"
                and ph.store == "primary")
    ours = next((ph.all() for ph in phases if ph.name == "household summary"), None)
    rows = []
    for ph in phases:
        lat = ph.all()
        ratio = ""
        if ph.route != "ours" and ours is not None:
            ratio = (f"{pct(lat, 50) / pct(ours, 50):.0f}x / {pct(lat, 99) / pct(ours, 99):.0f}x")
        cpu = ", ".join(f"{k} {v:.2f}" for k, v in ph.cpu.items())
        v = ph.view
        memory = f"{v['hits_total'] / max(1, v['hits_total'] + v['loads_total']):.1%}" \
            if v else "off"
        served = (f"{len(lat) / ph.seconds:,.0f} | {pct(lat, 50):.2f} | {pct(lat, 99):.2f} | "
                  f"{pct(lat, 99.9):.1f} | {ph.errors} | {ratio} | {memory}") if len(lat) \
            else "- | - | - | - | - | | -"
        rows.append(f"| {ph.scenario} | {ph.name} | {ph.store} | {ph.mode} | {served} | "
                    f"{pct(ph.pings, 99):.1f} / {pct(ph.pings, 100):.0f} | "
                    f"{pct(ph.floor, 99):.1f} | {app_text(ph)} | {pct(ph.client_lag, 99):.1f} | "
                    f"{1000 * ph.waited[0]:.0f} / {1000 * ph.waited[1]:.2f} | "
                    f"{gaps_text(ph)} | "
                    f"{ph.worker_rate:,.0f} | {ph.lag:,} | {cpu} |")
        if ph is head:
            for kind, values in sorted(ph.latencies.items()):
                rows.append(f"| | &nbsp;&nbsp;of which {kind} | | | {len(values) / ph.seconds:,.0f}"
                            f" | {pct(values, 50):.2f} | {pct(values, 99):.2f} | "
                            f"{pct(values, 99.9):.1f} | | | | | | | | | | | | |")
    mixed = [ph for ph in phases if ph.name == "mixed"]
    by_store = {store: "; ".join(f"{ph.scenario} {pct(ph.all(), 50):.1f} / "
                                 f"{pct(ph.all(), 99):.1f} ms" for ph in mixed
                                 if ph.store == store)
                for store in ("primary", "direct")}
    idle = next((ph for ph in mixed if ph.scenario == "idle" and ph.store == "primary"), None)
    idle99 = pct(idle.all(), 99) if idle else float("nan")
    goals, met = [], True
    for ph in mixed:
        if ph.store != "primary" or not ph.scenario.startswith("steady"):
            continue
        p99 = pct(ph.all(), 99)
        ok = p99 <= TARGET_P99_MS and p99 <= IDLE_RATIO * idle99
        if ph.scenario in ("steady 2x", "steady 10x"):
            met &= ok
        goals.append(f"  - {ph.scenario}: p99 {p99:.2f} ms, {p99 / idle99:.2f}x the idle p99 "
                     f"({idle99:.2f} ms): **{'met' if ok else 'MISSED'}**; the floor's p99 "
                     f"{pct(ph.floor, 99):.1f} ms (idle {pct(idle.floor, 99) if idle else float('nan'):.1f}); "
                     f"in the app p99 {bucket_pct(ph.app, 99):.1f} ms, {app_within(ph):.1%} "
                     f"within {TARGET_P99_MS:.0f} ms")
    screens = []
    for ph in phases:
        for where in ("API", "SSE"):
            if where in ph.screen:
                lat = ph.screen[where]
                ok = pct(lat, 99) <= SCREEN_P99_MS and len(lat) == int(ph.screen["sent"][0])
                if ph.scenario == "steady 2x":
                    met &= ok
                load = "alone" if ph.name == ALONE else f"with the {args.clients} clients"
                screens.append(f"  - {ph.scenario}, {load}, household {where}: "
                               f"{screen_text(ph, where)}"
                               f"{': **met**' if ok else ': **MISSED**'}")
    sweep = next((ph for ph in phases if ph.mode == "sweep"), None)
    split = "; ".join(
        f"{ph.scenario}: p99 {pct(ph.all(), 99):.1f} ms at the client, "
        f"{bucket_pct(ph.app, 99):.1f} ms in the dashboard's own code (in the app), its "
        f"serving loop runnable but waiting for a core {1000 * ph.waited[0]:.0f} ms a second"
        for ph in (head, idle) if ph is not None) + (
        ". The rest is time before the app (uvicorn's queue, and the serving process "
        "waiting for a core: the floor) and this load generator's own wake delays "
        f"(p99 {pct(head.client_lag, 99):.1f} ms at {head.scenario.split()[-1]}).")
    cpu_ms = head.cpu.get("dashboard", 0.0) / max(1e-9, len(head.all()) / head.seconds) * 1000
    body = f"""## Dashboard API under load (`benchmarks/bench_dashboard.py`)

{args.clients} concurrent clients (HTTP/1.1 keep-alive connections on uvloop, one request in
flight each: benchmarks/http_load.py) against one dashboard process
(uvicorn + uvloop + httptools) while the live path runs.{SPLIT_TEXT if args.split_cores else ""} Kafka, a private Redis, one Faust
worker, the dashboards and the load generator share this machine ({os.cpu_count()} cores,
{cpu_model()}, Python {platform.python_version()}). CPU priority ({args.cpu_priority}, `--cpu-priority`): the
dashboards' serving loops, as `auth-kappa dashboard` runs them (here: {args.priority_said}), the
floor probe at the same, and this load generator too: it stands for browsers on other
machines, so its own wait for a core is not the server's latency (its lag column says
what it was); the worker, Kafka, Redis and the simulator at normal priority. "everything
else" is the rest of the machine, other
people's jobs included, and "stolen by the host" the time the hypervisor gave this
virtual machine's cores to something else. Paced clients send one request every {args.interval} s from a
random phase (a live page's refresh), closed-loop clients back to back. A household
request is a random one of {args.meters:,} meters (signed link); fleet requests (operator
token) take a random utility and range. Latency is client-side, send to last byte,
{args.seconds:.0f} s per phase. "reads", both on the Redis the worker writes (no replica):
**primary** = household and fleet reads from the dashboard's memory, kept current by the
checkpoints' change stream (dashboards/changes.py; AUTH_DASHBOARD_WATCH_METERS =
{args.meters + 1000:,}, so the whole fleet fits); **direct** = the same dashboard with the
view off (AUTH_DASHBOARD_WATCH_METERS=0): every household read is a Redis round trip and
fleet answers come from a 1 s cache of Redis reads, as before. "from memory": household reads the view answered (the rest were read in from
Redis: a meter's first read). "Redis PING p99 / max": a probe on the Redis read (an HGET
of partition electricity:0's committed offset every 20 ms, as cheap as a PING), which
shows how long the worker's checkpoint transactions keep it busy; "checkpoints apart":
the time between two of that partition's checkpoints landing, from the offsets that
probe read. "floor p99": a process
beside the phase that does no work, only 20 ms timers on an event loop
(benchmarks/sched_floor.py): how late the machine wakes it, a latency no served process
can go below while the cores are shared. "in the app": the hot routes' own time in the
dashboard (its /metrics histogram, from the first middleware to the last byte handed to
the server; not the wait before uvicorn hands it the request), p99 interpolated within
the histogram's buckets as Prometheus does, and in brackets the share of requests done
within 5 ms. "load generator lag": the same 20 ms timers inside this benchmark's own
loop beside its clients: a response that arrives while that loop is busy is read that
much later, and the client-side latency counts it. "dashboard waited for a core": the
serving loop's time runnable but not running (the kernel's schedstat run delay of its
main thread), per second of the phase and per time it was scheduled.

- **catch-up**: the worker drains a backlog of {backlog:,} readings ({args.backlog} of
  event time) as fast as it can; the view's dashboard first reads every meter once
  (closed loop: each is a cold read, Redis into memory);
- **steady Nx**: the simulator streams the same fleet at N times real time
  ({", ".join(f"{x}: {pace_rate(args, x):,.0f}" for x in args.paces.split(","))}
  readings/s, frames of {args.frame_size}) and the worker keeps up (lag = messages not
  yet committed at the end of the phase);
- **idle**: the same load once the stream has stopped and the worker has caught up.

| scenario | phase | reads | clients | req/s | p50 ms | p99 ms | p99.9 ms | errors | vs ours p50 / p99 | from memory | Redis PING p99 / max ms | floor p99 ms | in the app p99 ms (<= 5 ms) | load generator lag p99 ms | dashboard waited for a core, ms/s / ms a wake | checkpoints apart p50 / max ms | worker readings/s | lag | cores used |
|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|
{chr(10).join(rows)}

Mixed load, p50 / p99 by scenario:
- primary (view): {by_store["primary"]}
- direct (no view): {by_store["direct"]}

Goals (issue 14), primary, mixed load, {args.clients} clients: p99 <= {TARGET_P99_MS:.0f} ms at steady 2x
and 10x, and p99 under ingest <= {IDLE_RATIO}x the idle p99 of the same run:
{chr(10).join(goals)}

Reading-to-screen, primary: meters of the benchmark's own get one reading every 0.1 s in
all (a CSV message produced to Kafka at the fleet's event time; a meter takes one per
second of event time, so 5 meters at 2x, 1 at 10x); the time from its produce call to the
first answer whose electricity card counts it, on the household API (the meters polled
in turn, one request every 20 ms) and on each meter's SSE stream; measured with the
{args.clients} clients of the mixed phase, and alone (the phase "{ALONE}": a household page
is all the dashboard serves). A reading not shown when its phase ends is awaited up to
{STRAGGLE_SECONDS:.0f} s more (its latency measured; the load has stopped by then); one
never shown fails the goal. Goal p99 <= {SCREEN_P99_MS / 1000:.0f} s at steady 2x:
{chr(10).join(screens)}

- Why memory: Redis runs one command at a time, so a read sent to it waits for whatever
  checkpoint transaction is running (PING columns: tens of ms flat out). Each checkpoint
  also adds, in the same MULTI/EXEC, a notice to a capped stream with the meter windows
  it wrote; the dashboard tails it and keeps every watched meter's shown windows in
  numpy rings, so a household read is answered without a Redis round trip. A meter not
  held is read once (MULTI with the stream's counter){f": the sweep above, {len(sweep.all()):,} first reads, p50 {pct(sweep.all(), 50):.1f} / p99 {pct(sweep.all(), 99):.0f} ms" if sweep else ""}.
  The fleet's per-state windows are held the same way (the notices carry the
  checkpoints' per-state deltas). The dashboard's own share: {cpu_ms:.2f} ms of CPU per
  request (mixed load).
- Where a request's time goes, this run: {split}
- Where the p99 under ingest went, 2026-12-03 (diagnostic runs, `--paces 2x,10x
  --skip-baselines --seconds 20 --backlog 2m`, one dashboard at 25,000 meters): at
  normal priority the serving loop was runnable but not running ~150 ms a second at 2x
  and the 2x p99 was 14 ms with 4.3 ms in the app. A shorter EEVDF slice for it (0.1
  ms, sched_setattr) left that at 14.7 ms; SCHED_FIFO for the dashboard alone made it
  4.9 ms, in the app 1.4 ms, the worker still at 30k readings/s (dashboards/cpu_priority.py,
  now its default where permitted). At 10x the load generator itself waited for a core
  (lag p99 22 ms), hence it runs at the same priority. What was left at 10x: a timer on
  each step of the notice tail and on every GC pass, matched against the slowest 1 % of
  requests, put 64 of 80 beside a notice step, the longest 5.8 ms: cutting a notice
  into parts sorted and copied the whole notice in one step (~12 ms for 75k windows);
  the parts are now cut lazily, one per turn of the loop (longest step 2.8 ms, 10x p99
  5.2 -> 3.7 ms, one run each). GC passes were 1-2 ms (generation 0 and 1), under 2 %
  of the slowest requests.
- Where the p99 under ingest went before (measured 2026-12-01, 25,000 meters at 2x,
  `--paces 2x --skip-baselines --seconds 30`): a loop-lag monitor inside the view's
  dashboard found its event-loop stalls above 15 ms overlapping a notice's apply for 2 %
  of their time, so the notices are not what requests wait for (applying one of 75k
  windows is ~13 ms since MeterView writes through flat indices; since 2026-12-03 it goes
  in parts of ~8k windows, requests served between them). The floor column shows
  the machine wakes an idle process within ~10 ms p99 under ingest. What requests wait
  for is the dashboard's own queue: 384 req/s at ~1.35 ms of CPU each is half a core,
  and under ingest this phase's processes use 1.9-2.0 of the 2 cores, so the serving
  process gets its half core late and requests queue behind each other (p50 2-3 ms idle,
  13-20 ms at 2x). Of a request's CPU, the summary and its JSON are ~0.35 ms and
  Starlette with the guards ~0.2 ms; the rest is uvicorn, the loop and the socket calls.
  With the dashboards and the load generator at nice -10 (`--serve-nice -10`) the p50
  halved and the p99 stayed. Anything that wakes 500 times a second on these 2 cores
  slows the rest: a 2 ms timer probe (the first floor probe, or a lag monitor in the
  dashboard) took the direct dashboard's 2x p50 from ~55 to ~400 ms and reading-to-screen
  from ~0.45 to ~1.3 s, hence the floor probe's 20 ms timers.
- Reading-to-screen's share on the dashboard's side: a notice reaches the view 5-10 ms
  after its checkpoint on average at 2x (the bench's "notices reach it" line). The tail
  reads on the serving loop: a read handed to a thread (until 2026-12-03) stalled the
  loop ~10 ms a notice, the main thread waiting to hand it over (py-spy). The rest is the worker's
  checkpoint writer (measured 2026-12-02 with timers around each transaction, 25,000
  meters at 2x): a reading shows when the transaction holding it lands, and the next
  checkpoint waits for the one in flight, so it waits up to two transactions. Each
  reading rewrites its 1m and 1h windows and its minute's first values, three HSETs of
  ~3 us of Redis CPU each on this machine, plus ~3.5 us of Python per window to encode
  them. With the 200 clients running, the writer was busy 85-95 % of the time before
  the minute turned (transactions of ~30k windows, 0.3-0.5 s). The minute's final
  windows (25,000 per utility at :30) made one transaction of 109k windows (2.1 s), and
  the writer never got back: while a transaction runs, the next one's readings pile
  up, so transactions stayed at 90-150k windows and 1.5-3.5 s for the rest of the
  phase (the p99). A final window Redis already holds is no longer written again, only
  its first values dropped (the minute's burst halves). What is left is the writer's
  own cost per window (about 13 us end to end, Redis a third of it): a Redis layout
  with cheaper writes per reading moved nothing end to end (see below, "Tried on
  2026-12-02 and not kept").
- Default run with no flags: every process on every core; the serving side's CPU
  priority as above, the live path's normal (`--cpu-priority normal` runs everything at
  the same priority; `--serve-nice` and `--split-cores` only for diagnosis).
- Ours vs baselines: the household page from memory; the naive page makes 252 Redis round
  trips, the engine page 6 HGETALLs into pandas frames. Same JSON through the same code.

Reproduce: `auth-kappa stack up && .venv/bin/python benchmarks/bench_dashboard.py`
(`--clients`, `--interval`, `--seconds`, `--meters`, `--backlog`, `--paces`,
`--skip-baselines`, `--cpu-priority`, `--serve-nice`, `--split-cores`).
"""
    print(body)
    if not args.no_write:
        write_section("bench_dashboard", body)
    return 0 if met else 2


if __name__ == "__main__":
    sys.exit(main())
