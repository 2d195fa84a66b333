"""Readings/s of ONE worker process, from Kafka to windows in Redis, against baselines.

Kafka, Redis and every process measured share this machine. Per case:

1. the simulator fills fresh topics (<base>-electricity|gas|water, --partitions each,
   no faults), one reading per message (case a) or frames of --frame-size (case b);
2. our worker runs as it does in production, as a subprocess:
   `python -m faust -A auth_kappa.app worker -l warn --without-web` with its own
   AUTH_TOPIC_PREFIX / AUTH_GROUP / AUTH_NAMESPACE; timed from process start until the
   offsets it commits to Redis together with the state (auth:<ns>:offsets:<group>) cover
   every message. Startup = start -> first committed offset; steady rate = readings
   between the first and the last committed offset / that time; total = readings / all
   of it. Peak RSS = VmHWM of the process plus its children (/proc/<pid>/status);
3. correctness, or the run fails loudly: per utility, the state-level 1-minute windows in
   Redis must count exactly the manifest's valid readings, and sum to its consumption;
4. the baselines read the same topics (their own consumer groups), each for at most
   --baseline-seconds (their rate is measured over what they processed):
   - Faust, textbook per-event agent (benchmarks/baselines/faust_per_event.py): progress
     = the counts it wrote to Redis;
   - Quix Streams tumbling window (benchmarks/baselines/quix_tumbling.py) in .venv-bench
     (quixstreams pins confluent-kafka < 2.13, the project 2.16, so it cannot share
     .venv; this script creates .venv-bench from setup.cfg's `bench` extra): progress =
     offsets its consumer group committed (case b: of its repartition topics, one
     message per reading). When a baseline finishes, its results are checked too.
5. cleanup: the Redis namespace (RedisWindowStore.drop_namespace), baseline keys, topics.

  .venv/bin/python benchmarks/bench_worker.py                      # both cases, ~8 min
  .venv/bin/python benchmarks/bench_worker.py --cases b --skip-baselines
  .venv/bin/python benchmarks/bench_worker.py --cases a --profile   # cProfile our worker

Writes its section of benchmarks/README.md (between <!-- bench_worker --> markers).
Exit 1 if a result is wrong, 2 if a target is missed, 0 otherwise.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import functools
import json
import os
import platform
import pstats
import re
import shutil
import signal
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

from auth_kappa.config import UTILITIES, Config, parse_duration  # noqa: E402
from auth_kappa.kafka_admin import delete_topics  # noqa: E402
from auth_kappa.runtime import consumer_choice  # noqa: E402
from auth_kappa.state.redis_store import RedisWindowStore  # noqa: E402
from benchmarks.report import cpu_model  # noqa: E402

README = Path(__file__).with_name("README.md")
BEGIN, END = "<!-- bench_worker -->", "<!-- /bench_worker -->"
VENV_BENCH = ROOT / ".venv-bench"
PY = sys.executable
WORKER_ENV: dict[str, str] = {}    # --worker-env: extra AUTH_* settings for our worker
# issue 14: 150k single readings/s, >= 5x Quix Streams and ahead of every peer; frames 500k/s
TARGET_SINGLE, TARGET_QUIX, TARGET_FRAMES = 150_000, 5.0, 500_000


def meets_target(single: bool, ours: float, baselines: dict[str, float]) -> tuple[bool, str]:
    """(met, the target in words) for our steady rate against the baselines' (NaN: none)."""
    if not single:
        return ours >= TARGET_FRAMES, f">= {TARGET_FRAMES:,}/s"
    rates = {name: r for name, r in baselines.items() if r == r}
    quix = [r for name, r in rates.items() if name.startswith("Quix")]
    ok = ours >= TARGET_SINGLE and all(ours > r for r in rates.values()) and \
        all(ours >= TARGET_QUIX * r for r in quix)
    target = f">= {TARGET_SINGLE:,}/s, >= {TARGET_QUIX:g}x Quix, ahead of every peer"
    return ok, target + ("" if baselines else " (baselines skipped)")


class Wrong(Exception):
    """A result that does not match the simulator's manifest: the benchmark must fail."""


@dataclass
class Case:
    key: str                 # "a" or "b"
    meters: int
    duration: float
    frame_size: int | None

    @property
    def label(self) -> str:
        return ("(a) one reading per message" if self.frame_size is None
                else f"(b) frames of {self.frame_size}")


@dataclass
class Run:
    engine: str
    readings: int            # readings the run had to process
    messages: int
    done: float = 0.0        # readings processed when it stopped
    total_s: float = 0.0     # process start -> last progress
    startup_s: float = float("nan")
    steady_rate: float = float("nan")
    peak_rss_mb: float = float("nan")
    complete: bool = False
    check: str = ""          # "ok", "not checked (partial)", or what was wrong
    notes: list[str] = field(default_factory=list)

    @property
    def total_rate(self) -> float:
        return self.done / self.total_s if self.total_s else float("nan")


# ---------------------------------------------------------------- processes, /proc


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) of a live process, in MB; nan once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def session_of(pid: int) -> int:
    """Session id of a process (-1 if gone): a child a measured process started, such as
    PyFlink's JVM, shares its session (start() makes one per process) and counts as it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return -1
    return int(stat[stat.rindex(")") + 2:].split()[3])


def session_rss_mb(pid: int) -> float:
    """Peak RSS of a process plus its descendants' (PyFlink's JVM); cheap enough to sample."""
    rss, todo = peak_rss_mb(pid), [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                for child in task.read_text().split():
                    rss += np.nan_to_num(peak_rss_mb(int(child)))
                    todo.append(int(child))
    return rss


TICK = os.sysconf("SC_CLK_TCK")


def cpu_by_process() -> dict[int, tuple[str, float]]:
    """pid -> (command name, CPU seconds so far) for every process we can read."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[int(d.name)] = (name, (int(fields[11]) + int(fields[12])) / TICK)
    return out


def cpu_shares(before: dict, after: dict, pid: int, seconds: float) -> dict[str, float]:
    """Cores used during the run: the measured process, Redis, Kafka, everything else."""
    share = {"measured": 0.0, "children": 0.0, "harness": 0.0, "redis": 0.0, "kafka": 0.0,
             "other": 0.0}
    me = os.getpid()
    for p, (name, cpu) in after.items():
        used = cpu - before.get(p, (name, 0.0))[1]
        if p != pid and session_of(p) == pid:
            share["children"] += used    # also in "measured": our archiver, PyFlink's JVM
        who = ("measured" if p == pid or session_of(p) == pid else "harness" if p == me else
               "redis" if name.startswith("redis") else
               "kafka" if name == "java" else "other")
        share[who] += used
    return {k: v / seconds for k, v in share.items()} if seconds > 0 else share


def start(cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen:
    with open(log, "wb") as fh:
        return subprocess.Popen(cmd, env=env, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop(proc: subprocess.Popen, timeout: float = 60) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def tail(path: Path, n: int = 2500) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else ""


def watch(run: Run, proc: subprocess.Popen, t0: float, progress: Callable[[], float],
          limit: float, log: Path, every: float = 0.1) -> None:
    """Sample progress (readings) until all are done or `limit` seconds have passed."""
    first: tuple[float, float] | None = None
    last_t, last_done = t0, 0.0
    cpu0 = cpu_by_process()
    while True:
        now = time.perf_counter()
        rss = session_rss_mb(proc.pid)
        if rss == rss:
            run.peak_rss_mb = rss
        if proc.poll() is not None:
            raise Wrong(f"{run.engine} exited with {proc.returncode} after "
                        f"{now - t0:.1f} s:\n{tail(log)}")
        done = progress()
        if done > last_done:
            last_t, last_done = now, done
            if first is None:
                first = (now, done)
        if done >= run.readings or now - t0 >= limit:
            break
        time.sleep(every)
    run.done, run.complete = last_done, last_done >= run.readings
    run.total_s = last_t - t0
    c = cpu_shares(cpu0, cpu_by_process(), proc.pid, time.perf_counter() - t0)
    children = f" (its child processes {c['children']:.2f} of it)" if c["children"] >= 0.005 else ""
    run.notes.append(f"CPU (cores) while it ran: itself {c['measured']:.2f}{children}, "
                     f"Redis (shared server) "
                     f"{c['redis']:.2f}, Kafka {c['kafka']:.2f}, this benchmark's polling "
                     f"{c['harness']:.2f}, other processes {c['other']:.2f}")
    if c["other"] > 0.25:
        run.notes.append("**other processes used the machine during this run: its rate is "
                         "understated**")
    if first is not None:
        run.startup_s = first[0] - t0
        if last_t > first[0]:
            run.steady_rate = (last_done - first[1]) / (last_t - first[0])
    if not run.complete:
        run.notes.append(f"stopped after {limit:.0f} s with {last_done:,.0f} of "
                         f"{run.readings:,} readings")


# ---------------------------------------------------------------- Kafka helpers


def end_offsets(kafka: str, topics: list[str]) -> dict[tuple[str, int], int]:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": kafka, "group.id": f"bench-probe-{uuid.uuid4().hex}",
                  "enable.auto.commit": False})
    try:
        meta = c.list_topics(timeout=15)
        out = {}
        for t in topics:
            for p in meta.topics[t].partitions:
                out[(t, p)] = c.get_watermark_offsets(TopicPartition(t, p), timeout=15)[1]
        return out
    finally:
        c.close()


def committed_offsets(admin, group: str) -> dict[tuple[str, int], int]:
    from confluent_kafka import ConsumerGroupTopicPartitions

    futs = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])
    try:
        res = next(iter(futs.values())).result(timeout=10)
    except Exception:  # noqa: BLE001 - the group may not exist yet
        return {}
    return {(tp.topic, tp.partition): tp.offset for tp in res.topic_partitions or []
            if tp.offset >= 0}


def delete_keys(client, pattern: str) -> None:
    batch = []
    for key in client.scan_iter(match=pattern, count=2000):
        batch.append(key)
        if len(batch) >= 2000:
            client.unlink(*batch)
            batch = []
    if batch:
        client.unlink(*batch)


# ---------------------------------------------------------------- data


def produce(case: Case, base: str, out: Path, partitions: int) -> tuple[dict, float]:
    cmd = [PY, "-m", "auth_kappa.cli.main", "simulate", "--to", "kafka", "--quiet",
           "--topic-prefix", f"{base}-", "--meters", str(case.meters),
           "--duration", f"{case.duration:g}s", "--partitions", str(partitions),
           "--out", str(out)]
    if case.frame_size:
        cmd += ["--frame-size", str(case.frame_size)]
    t0 = time.perf_counter()
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    if run.returncode:
        raise SystemExit(f"simulate failed ({run.returncode}): {run.stderr.strip()}")
    return json.loads((out / "manifest.json").read_text()), time.perf_counter() - t0


def quix_expected(case: Case) -> dict[str, int]:
    """Readings Quix's final() must have emitted: all but each meter's last window
    (closing strategy 'key', grace 0: a window closes at the meter's next newer reading)."""
    from simulators import SimSpec, iter_reading_batches, make_registry

    spec = SimSpec(meters=case.meters, duration=case.duration, seed=0)
    meter: dict[str, list] = {u: [] for u in UTILITIES}
    window: dict[str, list] = {u: [] for u in UTILITIES}
    registry = make_registry(spec)
    index = {s: i for i, s in enumerate(registry.service_id.to_pylist())}
    for utility, batch in iter_reading_batches(spec, registry):
        sid = batch.column(0).to_pylist()
        meter[utility].append(np.fromiter((index[s] for s in sid), np.int64, len(sid)))
        window[utility].append(batch.column(6).to_numpy() // 60)
    out = {}
    for u in UTILITIES:
        m, w = np.concatenate(meter[u]), np.concatenate(window[u])
        last = np.full(case.meters, -1, np.int64)
        np.maximum.at(last, m, w)
        out[u] = int((w < last[m]).sum())
    return out


# ---------------------------------------------------------------- the runs


def run_ours(case: Case, base: str, manifest: dict, ends: dict, cfg: Config, tmp: Path,
             limit: float, group: str | None = None, profile: Path | None = None,
             consumer: str | None = None) -> Run:
    """Topics <base>-*, consumer group and Redis namespace `group` (default: base);
    `consumer`: AUTH_CONSUMER for this run (named in the engine column)."""
    group = group or base
    total_msgs = sum(ends.values())
    readings = sum(c["readings"] + c["duplicates"] for c in manifest["utilities"].values())
    run = Run("auth-kappa worker" + (f" (AUTH_CONSUMER={consumer})" if consumer else "")
              + (" (cProfile)" if profile else ""), readings, total_msgs)
    env = {**os.environ, "AUTH_TOPIC_PREFIX": f"{base}-", "AUTH_GROUP": group,
           "AUTH_NAMESPACE": group, "AUTH_CACHE_DIR": str(tmp / "cache"),
           "AUTH_PARTITIONS": str(len(ends) // len(UTILITIES)), **WORKER_ENV,
           **({"AUTH_CONSUMER": consumer} if consumer else {})}
    worker_cfg = Config.load(env=env)
    store = RedisWindowStore.connect(cfg.redis_url, group, worker_cfg.window_specs(),
                                     group=group)
    if worker_cfg.consumer == "auto":   # the worker's own probe, run here too
        run.notes.append(f"AUTH_CONSUMER=auto read these topics with "
                         f"{consumer_choice.choose(worker_cfg)}")
    prof = ["-m", "cProfile", "-o", str(profile)] if profile else []
    cmd = [PY, *prof, "-m", "faust", "-A", "auth_kappa.app", "worker", "-l", "warn",
           "--without-web"]
    log = tmp / f"worker-{case.key}.log"
    ratio = readings / total_msgs
    t0 = time.perf_counter()
    proc = start(cmd, env, ROOT, log)
    try:  # the namespace goes whatever happens (a crashed worker leaves ~70k keys)
        try:
            watch(run, proc, t0, lambda: sum(store.offsets().values()) * ratio, limit, log)
            run.peak_rss_mb = max(run.peak_rss_mb, peak_rss_mb(proc.pid))
        finally:
            stop(proc)
        if not run.complete:
            raise Wrong(f"our worker did not catch up within {limit:.0f} s "
                        f"({run.done:,.0f} of {readings:,}):\n{tail(log)}")
        if profile is None:
            run.check = check_ours(store, manifest)
    finally:
        store.drop_namespace()
    return run


def check_ours(store: RedisWindowStore, manifest: dict) -> str:
    problems = []
    for u in UTILITIES:
        truth = manifest["utilities"][u]
        df = store.read_windows("state", u, 60)
        count, total = int(df["count"].sum()), float(df["sum"].sum())
        want = float(truth["consumption_sum"])
        if count != truth["valid_readings"]:
            problems.append(f"{u}: {count:,} readings in state windows, manifest says "
                            f"{truth['valid_readings']:,}")
        if abs(total - want) > 1e-9 * max(1.0, abs(want)):
            problems.append(f"{u}: state windows sum {total!r}, manifest {want!r}")
    if problems:
        raise Wrong("our worker's windows are WRONG: " + "; ".join(problems))
    return "ok"


def run_faust(case: Case, base: str, manifest: dict, ends: dict, cfg: Config, tmp: Path,
              limit: float) -> Run:
    import redis

    readings = sum(c["readings"] for c in manifest["utilities"].values())
    run = Run("Faust per-event agent", readings, sum(ends.values()))
    ns = f"{base}-faust"
    env = {**os.environ, "BENCH_PREFIX": f"{base}-", "BENCH_GROUP": ns, "BENCH_NAMESPACE": ns,
           "BENCH_DATADIR": str(tmp / "faust-data"), "PYTHONPATH": str(ROOT)}
    client = redis.Redis.from_url(cfg.redis_url)
    count_keys = [f"bench:{ns}:c:{u}:60" for u in UTILITIES]

    def progress() -> float:
        pipe = client.pipeline(transaction=False)
        for k in count_keys:
            pipe.hvals(k)
        return float(sum(int(v) for vals in pipe.execute() for v in vals))

    log = tmp / f"faust-{case.key}.log"
    cmd = [PY, "-m", "faust", "-A", "benchmarks.baselines.faust_per_event", "worker", "-l",
           "warn", "--without-web"]
    t0 = time.perf_counter()
    proc = start(cmd, env, ROOT, log)
    try:  # its keys go whatever happens
        try:
            watch(run, proc, t0, progress, limit, log, every=0.25)
        finally:
            stop(proc)
        if run.complete:
            problems = []
            for u in UTILITIES:
                truth = manifest["utilities"][u]
                counts = sum(int(v) for v in client.hvals(f"bench:{ns}:c:{u}:60"))
                total = sum(float(v) for v in client.hvals(f"bench:{ns}:s:{u}:60"))
                if counts != truth["valid_readings"] or \
                        abs(total - float(truth["consumption_sum"])) > 1e-6 * max(1, total):
                    problems.append(f"{u}: {counts} readings, sum {total}")
            run.check = "WRONG: " + "; ".join(problems) if problems else "ok"
        else:
            run.check = "not checked (partial)"
    finally:
        delete_keys(client, f"bench:{ns}:*")
    return run


def ensure_bench_venv() -> Path:
    """.venv-bench with the `bench` extra of setup.cfg (+ redis, pyarrow as pinned)."""
    py = VENV_BENCH / "bin" / "python"
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    bench = [r.strip() for r in cfg["options.extras_require"]["bench"].splitlines() if r.strip()]
    pins = [r.strip() for r in cfg["options"]["install_requires"].splitlines()
            if r.strip().split(">")[0].split("=")[0].split("<")[0] in ("redis", "pyarrow")]
    want = [*bench, *pins]
    stamp = VENV_BENCH / ".requirements"
    if py.exists() and stamp.exists() and stamp.read_text() == "\n".join(want):
        return py
    base = getattr(sys, "_base_executable", None) or sys.executable
    subprocess.run([base, "-m", "venv", str(VENV_BENCH)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", *want], check=True)
    stamp.write_text("\n".join(want))
    return py


def run_quix(case: Case, base: str, manifest: dict, ends: dict, cfg: Config, tmp: Path,
             limit: float) -> Run:
    import redis
    from confluent_kafka.admin import AdminClient

    py = ensure_bench_venv()
    readings = sum(c["readings"] for c in manifest["utilities"].values())
    run = Run("Quix Streams tumbling window", readings, sum(ends.values()))
    ns, group = f"{base}-quix", f"{base}-quix"
    admin = AdminClient({"bootstrap.servers": cfg.kafka})
    sources = {t for t, _ in ends}

    def progress() -> float:
        done = committed_offsets(admin, group)
        if case.frame_size is None:
            return float(sum(v for (t, _), v in done.items() if t in sources))
        return float(sum(v for (t, _), v in done.items() if t.startswith("repartition")))

    log = tmp / f"quix-{case.key}.log"
    cmd = [str(py), str(ROOT / "benchmarks" / "baselines" / "quix_tumbling.py"),
           "--prefix", f"{base}-", "--group", group, "--namespace", ns,
           "--state-dir", str(tmp / "quix-state"), "--kafka", cfg.kafka,
           "--redis-url", cfg.redis_url] + (["--frames"] if case.frame_size else [])
    client = redis.Redis.from_url(cfg.redis_url)
    t0 = time.perf_counter()
    proc = start(cmd, dict(os.environ), tmp, log)
    try:  # its keys go whatever happens
        try:
            watch(run, proc, t0, progress, limit, log, every=0.5)
        finally:
            stop(proc)
        if run.complete:
            expected = quix_expected(case)
            got = dict.fromkeys(UTILITIES, 0)
            keys = list(client.scan_iter(match=f"qx:{ns}:*", count=5000))
            for lo in range(0, len(keys), 5000):
                part = keys[lo:lo + 5000]
                for k, v in zip(part, client.mget(part), strict=True):
                    got[k.decode().split(":")[2]] += json.loads(v)["count"]
            run.check = "ok" if got == expected else f"WRONG: final windows {got} != {expected}"
            run.notes.append(f"final windows hold {sum(got.values()):,} readings (each "
                             "meter's last window stays open: closing by key, grace 0)")
        else:
            run.check = "not checked (partial)"
    finally:
        delete_keys(client, f"qx:{ns}:*")
    return run


def peer_runs(names: str) -> list[Callable[..., Run]]:
    """The peers users would pick instead (benchmarks/peers/), each run like run_quix."""
    from benchmarks.peers import harness

    picked = [n for n in names.split(",") if n and n != "none"]
    unknown = [n for n in picked if n not in harness.PEERS]
    if unknown:
        raise SystemExit(f"--peers: unknown {', '.join(unknown)}; use "
                         f"{','.join(harness.PEERS)} or none")
    return [functools.partial(harness.run_peer, sys.modules[__name__], n) for n in picked]


def peer_notes() -> list[str]:
    from benchmarks.peers import harness

    return harness.describe()


# ---------------------------------------------------------------- profile


def hot_spots(path: Path, n: int = 25) -> str:
    stats = pstats.Stats(str(path))
    rows = []
    total = stats.total_tt
    for (file, line, func), (_cc, nc, tt, ct, _callers) in sorted(
            stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:n]:
        where = f"{Path(file).relative_to(ROOT) if file.startswith(str(ROOT)) else Path(file).name}:{line}"
        rows.append(f"{tt:8.2f}s self {tt / total:6.1%}  {ct:8.2f}s cum  {nc:>10,} calls  "
                    f"{func}  {where}")
    return "\n".join(rows)


# ---------------------------------------------------------------- report


def machine_notes(cfg: Config) -> str:
    import redis

    cpu = cpu_model()
    mem = int(next(ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines()
                   if ln.startswith("MemTotal"))) / 1024 ** 2
    rv = redis.Redis.from_url(cfg.redis_url).info("server")["redis_version"]
    kafka = "?"
    with contextlib.suppress(Exception):
        jars = [*(ROOT / cfg.cache_dir).glob("kafka-*/libs/kafka_2.13-*.jar"),
                *(ROOT / cfg.stack_dir).rglob("kafka_2.13-*.jar")]
        kafka = re.search(r"kafka_2\.13-([\d.]+)\.jar", jars[0].name).group(1)
    versions = {}
    for name in ("faust-streaming", "aiokafka", "confluent-kafka", "pyarrow"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version
            versions[name] = version(name)
    qv = ["-", "-"]
    if (VENV_BENCH / "bin" / "python").exists():   # absent when baselines were skipped
        quix = subprocess.run([str(VENV_BENCH / "bin" / "python"), "-c",
                               "import quixstreams, confluent_kafka as c; v = c.version(); "
                               "print(quixstreams.__version__, "
                               "v[0] if isinstance(v, tuple) else v)"],
                              capture_output=True, text=True)
        qv = quix.stdout.split() if quix.returncode == 0 else qv
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                          capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "auth_kappa"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    code = f"code at {head}" + (" with uncommitted changes in auth_kappa/" if dirty else "")
    return (f"{code}; {os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, "
            f"Linux {platform.release()}; "
            f"Python {platform.python_version()}; Kafka {kafka} (one KRaft node) and Redis {rv} "
            f"on the same machine; " + ", ".join(f"{k} {v}" for k, v in versions.items())
            + f"; quixstreams {qv[0]} with confluent-kafka {qv[-1]} in .venv-bench")


def fmt_rate(x: float) -> str:
    return "-" if x != x else f"{x:,.0f}"


def section(results: list[tuple[Case, dict, float, list[Run]]], args: argparse.Namespace,
            notes: str, verdicts: list[str]) -> str:
    rows = []
    for case, _manifest, _produce_s, runs in results:
        ours = runs[0]
        base = {r.engine: r for r in runs[1:] if not r.engine.startswith("auth-kappa")}
        for r in runs:
            ratios = "-"
            if r is ours and base and ours.steady_rate == ours.steady_rate:
                ratios = ", ".join(f"{ours.steady_rate / b.steady_rate:.1f}x {b.engine.split()[0]}"
                                   for b in base.values() if b.steady_rate == b.steady_rate)
            if r is ours and ours.steady_rate != ours.steady_rate:
                verdict = "n/a: done within one checkpoint, give it more readings"
            elif r is ours:
                ok, target = meets_target(case.frame_size is None, ours.steady_rate,
                                          {n: b.steady_rate for n, b in base.items()})
                verdict = f"**{'PASS' if ok else 'FAIL'}** ({target})"
            else:
                verdict = r.check
            rows.append(f"| {case.label} | {r.engine} | {r.done:,.0f} of {r.readings:,} | "
                        f"{r.messages:,} | **{fmt_rate(r.steady_rate)}** | "
                        f"{fmt_rate(r.total_rate)} | {r.startup_s:.1f} | {r.peak_rss_mb:,.0f} | "
                        f"{ratios} | {verdict} |")
    details = []
    for case, _manifest, produce_s, runs in results:
        details.append(f"- {case.label}: {case.meters:,} meters x {case.duration:g} s x 3 "
                       f"utilities; produced by `auth-kappa simulate --to kafka` in "
                       f"{produce_s:.1f} s (not timed).")
        for r in runs:
            details += [f"  - {r.engine}: {n}" for n in r.notes]
    cmd = "auth-kappa stack up && .venv/bin/python benchmarks/bench_worker.py"
    extra = []
    if args.cases != "a,b":
        extra.append(f"--cases {args.cases}")
    for flag in ("meters", "duration", "single_duration", "frame_size", "partitions",
                 "baseline_seconds"):
        if getattr(args, flag) != DEFAULTS[flag]:
            extra.append(f"--{flag.replace('_', '-')} {getattr(args, flag)}")
    if args.skip_baselines:
        extra.append("--skip-baselines")
    extra += [f"--worker-env {k}={v}" for k, v in WORKER_ENV.items()]
    extra += [f"--compare-consumer {c}" for c in args.compare_consumer]
    if args.profile:
        extra.append("--profile")
    cmd += "".join(f" {e}" for e in extra)
    return f"""## One worker: Kafka -> windows in Redis (`benchmarks/bench_worker.py`)

Readings per second of ONE `faust -A auth_kappa.app worker` process (1m + 1h windows,
per meter and per state, dedup, watermark, offsets and state in one Redis transaction per
checkpoint), from topics filled beforehand by the simulator ({args.partitions} partitions
per utility, no faults) until its committed offsets cover every message. Baselines read
the same topics for at most {args.baseline_seconds:g} s each. **readings/s** is the steady
rate (first to last progress, e.g. committed offset); *total* includes startup
(process start to first progress, column *startup s*). Peak RSS = VmHWM of the process
plus its child processes'.

Machine: {notes}.

| case | engine | readings | messages | **readings/s** | total readings/s | startup s | peak RSS MB | ours vs baselines | check / target |
|---|---|---:|---:|---:|---:|---:|---:|---|---|
{chr(10).join(rows)}

{chr(10).join(details)}
- Our worker's check: per utility, the state-level 1-minute windows in Redis count
  exactly the manifest's valid readings and sum to its consumption (else the run fails).
- Our worker runs as deployed, with its archiver in a child process (`AUTH_ARCHIVE_PROCESS`,
  its own consumer group, reading every message again); its CPU and memory count as the
  worker's. The archiver seals a roll (decodes it again and writes Parquet, on a thread)
  at 64 MB per partition or after 60 s: a run shorter than that measures its reading and
  buffering, not its sealing.
- Faust baseline (`benchmarks/baselines/faust_per_event.py`): per reading, one pipeline
  of HINCRBYFLOAT meter window, HINCRBYFLOAT state window, HINCRBY state count; 1-minute
  windows only (less work than ours: no 1h windows, no dedup, no watermark).
- Quix baseline (`benchmarks/baselines/quix_tumbling.py`): `tumbling_window(60 s)
  .agg(Sum, Count).final()` per message key, event time = end_ts, final windows to
  Redis with Quix's RedisSink; RocksDB state with changelog topics (Quix's default),
  commit every 1 s. Frames have no key, so Quix expands them and re-keys with
  `group_by("service_id")` (a repartition topic): its progress is counted there.
  Per meter only (no state-level windows).
{chr(10).join(verdicts)}

Reproduce: `{cmd}`
(flags `--cases a,b`, `--meters`, `--duration` (frames case), `--single-duration`
(case a), `--frame-size`, `--partitions`, `--baseline-seconds`, `--skip-baselines`,
`--profile` to run our worker under cProfile and print its hot spots).
"""


def write_readme(text: str) -> None:
    old = README.read_text() if README.exists() else "# Benchmarks\n"
    block = f"{BEGIN}\n{text.rstrip()}\n{END}"
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.DOTALL)
    new = pattern.sub(lambda _: block, old) if pattern.search(old) else \
        old.rstrip() + "\n\n" + block + "\n"
    README.write_text(new)


DEFAULTS = {"meters": 20_000, "duration": "10m", "single_duration": "90s", "frame_size": 500,
            "partitions": 4, "baseline_seconds": 90.0}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", default="a,b", help="a (one reading per message), b (frames)")
    p.add_argument("--meters", type=int, default=DEFAULTS["meters"])
    p.add_argument("--duration", default=DEFAULTS["duration"],
                   help="simulated time for the frames case (default 10m: ~7.2M readings)")
    p.add_argument("--single-duration", default=DEFAULTS["single_duration"],
                   help="simulated time for case (a) (default 90s: ~1.0M readings)")
    p.add_argument("--frame-size", type=int, default=DEFAULTS["frame_size"])
    p.add_argument("--partitions", type=int, default=DEFAULTS["partitions"])
    p.add_argument("--baseline-seconds", type=float, default=DEFAULTS["baseline_seconds"],
                   help="stop each baseline after this long (its rate is what it did)")
    p.add_argument("--skip-baselines", action="store_true")
    p.add_argument("--peers", default="bytewax,pathway,flink",
                   help="peers run after Faust and Quix (benchmarks/peers/), or none")
    p.add_argument("--profile", action="store_true",
                   help="also run our worker under cProfile per case and print hot spots")
    p.add_argument("--compare-consumer", action="append", default=[], metavar="NAME",
                   help="also run our worker with AUTH_CONSUMER=NAME (aiokafka, confluent, auto) "
                        "on the same topics, in the same run")
    p.add_argument("--worker-env", action="append", default=[], metavar="AUTH_X=VALUE",
                   help="extra environment for our worker (repeatable); reported in README")
    p.add_argument("--no-readme", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep topics and temp files")
    args = p.parse_args()

    cfg = Config.load()
    for item in args.worker_env:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("AUTH_"):
            raise SystemExit(f"--worker-env {item!r}: use AUTH_NAME=VALUE")
        WORKER_ENV[name] = value
    cases = []
    for key in args.cases.split(","):
        if key == "a":
            cases.append(Case("a", args.meters, parse_duration(args.single_duration), None))
        elif key == "b":
            cases.append(Case("b", args.meters, parse_duration(args.duration), args.frame_size))
        else:
            raise SystemExit(f"--cases: unknown case {key!r}; use a, b or a,b")
    if not args.skip_baselines:
        ensure_bench_venv()
        peer_runs(args.peers)   # a typo fails here, not after our worker's run
    notes = machine_notes(cfg)   # before the runs: the code version they measure
    tmp_root = Path(tempfile.mkdtemp(prefix="bench-worker-"))
    results, verdicts, failed_target = [], [], False
    try:
        for case in cases:
            base = f"bw{uuid.uuid4().hex[:8]}{case.key}"
            tmp = tmp_root / case.key
            tmp.mkdir()
            try:
                print(f"[{case.label}] producing ...", file=sys.stderr)
                manifest, produce_s = produce(case, base, tmp / "sim", args.partitions)
                topics = [f"{base}-{u}" for u in UTILITIES]
                ends = end_offsets(cfg.kafka, topics)
                readings = sum(c["readings"] for c in manifest["utilities"].values())
                limit = max(120.0, readings / 20_000)
                print(f"[{case.label}] {readings:,} readings in {sum(ends.values()):,} "
                      f"messages; our worker ...", file=sys.stderr)
                runs = [run_ours(case, base, manifest, ends, cfg, tmp, limit)]
                print(f"  ours: {fmt_rate(runs[0].steady_rate)}/s steady, "
                      f"{fmt_rate(runs[0].total_rate)}/s total, {runs[0].peak_rss_mb:.0f} MB",
                      file=sys.stderr)
                for i, other in enumerate(args.compare_consumer):  # same topics, own group
                    r = run_ours(case, base, manifest, ends, cfg, tmp, limit,
                                 group=f"{base}c{i}", consumer=other)
                    print(f"  ours with AUTH_CONSUMER={other}: {fmt_rate(r.steady_rate)}/s "
                          f"steady, {r.peak_rss_mb:.0f} MB", file=sys.stderr)
                    runs.append(r)
                if not args.skip_baselines:
                    for fn in (run_faust, run_quix, *peer_runs(args.peers)):
                        r = fn(case, base, manifest, ends, cfg, tmp, args.baseline_seconds)
                        print(f"  {r.engine}: {fmt_rate(r.steady_rate)}/s, {r.check}",
                              file=sys.stderr)
                        runs.append(r)
                results.append((case, manifest, produce_s, runs))
                ok, _ = meets_target(case.frame_size is None, runs[0].steady_rate,
                                     {b.engine: b.steady_rate for b in runs[1:]
                                      if not b.engine.startswith("auth-kappa")})
                failed_target |= not ok
                if args.profile:
                    # same topics, a fresh group and namespace
                    prof = ROOT / "out" / f"bench_worker-{case.key}.prof"
                    prof.parent.mkdir(exist_ok=True)
                    r = run_ours(case, base, manifest, ends, cfg, tmp, limit * 3,
                                 group=base + "p", profile=prof)
                    spots = hot_spots(prof)
                    print(f"\n[{case.label}] cProfile of our worker ({fmt_rate(r.steady_rate)}"
                          f"/s under the profiler; {prof.relative_to(ROOT)}), top by self "
                          f"time:\n{spots}\n", file=sys.stderr)
                    verdicts.append(
                        f"- cProfile of our worker, {case.label} ({fmt_rate(r.steady_rate)}/s "
                        f"under the profiler), top 15 by self time (main thread):\n\n```\n"
                        + "\n".join(spots.splitlines()[:15]) + "\n```")
            finally:
                if not args.keep:
                    delete_topics(cfg.kafka, contains=base)
    except Wrong as exc:
        print(f"bench_worker: FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(tmp_root, ignore_errors=True)
    if not args.skip_baselines and args.peers != "none":
        verdicts.extend(peer_notes())
    if WORKER_ENV:
        verdicts.append("- Our worker ran with " + ", ".join(f"`{k}={v}`" for k, v in
                                                             WORKER_ENV.items()) + ".")
    text = section(results, args, notes, verdicts)
    print(text)
    if not args.no_readme:
        write_readme(text)
    return 2 if failed_target else 0


if __name__ == "__main__":
    sys.exit(main())
