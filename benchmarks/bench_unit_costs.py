"""Unit costs of the live path, per reading, as users run it: the figures a capacity plan needs.

On a 2-core machine the absolute rates saturate; CPU seconds and bytes per reading are what
carry over to other machines. Per case (single messages; frames of --frame-size) and per
worker count (1, 2, 4 `auth-kappa worker` processes in one group, archiver on as deployed):

1. fresh topics <base>-electricity|gas|water (--partitions each), a private consumer group,
   Redis namespace and S3 bucket; the workers start and the benchmark waits until both of
   their consumer groups (stream and archive) are stable with every worker in them, so
   start-up (imports, joining) is not charged to the readings;
2. CPU snapshot of the worker processes and their children (/proc/<pid>/stat utime + stime,
   plus cutime + cstime) and of the Redis server (INFO cpu used_cpu_sys + used_cpu_user);
3. `auth-kappa simulate --to kafka` (its own process, not counted) fills the topics while
   the workers stream; the run ends when the offsets the workers commit with their state
   cover every message AND the archive's progress objects cover every offset;
4. second snapshot: worker CPU s and Redis CPU s per million readings. Redis is a shared
   server: its CPU over an idle stretch just before the run is taken as background and
   subtracted (both are reported);
5. bytes: Kafka = growth of the source topics' segment files (*.log) in the broker's log
   dirs (record batches as stored: compressed, with batch headers; one replica); archive =
   bytes of the Parquet objects the archiver wrote under archive/ (progress objects not
   counted);
6. correctness, or the run fails: per utility the state-level 1-minute windows in Redis
   count exactly the manifest's valid readings and sum to its consumption, and the
   archive holds exactly one row per reading;
7. cleanup: namespace, bucket, topics.

Each configuration runs against 1 Redis primary (the stack's shared server) and against
3 primaries: a private Redis Cluster (3 primaries, 3 replicas) started for the run by
`auth-kappa stack up redis --redis-cluster` in a temp stack dir, workers with
AUTH_REDIS_CLUSTER=1. Redis CPU is summed over the primaries (each one's background
subtracted; the replicas' CPU is reported apart), Redis bytes are MEMORY USAGE of the run's
namespace summed over the primaries. The worker logs are searched for store errors
(CROSSSLOT, MOVED, Fenced, store failure, Traceback) and the count reported.

  .venv/bin/python benchmarks/bench_unit_costs.py    # 12-16 min (--redis 1: ~6); make bench-costs
  .venv/bin/python benchmarks/bench_unit_costs.py --redis 3 --workers 1 --cases frames

Writes its section of benchmarks/README.md, benchmarks/unit_costs.json, and the package
defaults auth_kappa/capacity_defaults.py that `auth-kappa plan` reads.
Exit 1 if a result is wrong.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import pprint
import re
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from auth_kappa.config import UTILITIES, Config, parse_duration  # noqa: E402
from auth_kappa.kafka_admin import delete_topics, ensure_topics  # noqa: E402
from auth_kappa.stack.s3admin import ensure_bucket, s3_client  # noqa: E402
from auth_kappa.state.redis_store import RedisWindowStore  # noqa: E402
from benchmarks.bench_worker import (  # noqa: E402
    PY,
    TICK,
    Case,
    Wrong,
    check_ours,
    end_offsets,
    produce,
    start,
    stop,
    tail,
)
from benchmarks.redis_targets import RedisTarget, private_cluster, single  # noqa: E402
from benchmarks.report import write_section  # noqa: E402

JSON_OUT = Path(__file__).with_name("unit_costs.json")
PACKAGE_OUT = ROOT / "auth_kappa" / "capacity_defaults.py"
STATE_README = Path(__file__).with_name("README.md")
ROLL_SECONDS = "10s"


@dataclass
class Result:
    case: str                  # "single" or "frames"
    workers: int
    archive: bool              # the archiver ran in the workers (as deployed)
    readings: int
    messages: int
    seconds: float             # simulator start -> everything in Redis and the archive
    worker_cpu_s: float
    redis_cpu_s: float         # net of background
    redis_bg_cpu_s: float      # background charged over the same seconds
    worker_idle_cpu_s: float   # the workers' idle rate (polling) over the same seconds
    kafka_bytes: int           # source topics' *.log growth
    kafka_all_bytes: int       # every topic of the run (incl. the worker's outputs)
    archive_bytes: int
    archive_objects: int
    check: str
    primaries: int = 1
    meters: int = 0
    redis_cpu_by_primary: list[float] | None = None   # net of each one's background
    redis_replica_cpu_s: float = 0.0                  # a cluster's replicas (not in redis_cpu_s)
    redis_bytes: int = 0                              # the namespace at the end, all primaries
    redis_keys: int = 0
    log_problems: int = 0                             # store errors in the worker logs
    redis_used_growth: int = 0                        # INFO used_memory growth, all primaries
    tags_by_primary: list[int] | None = None          # partition tags {utility:p} per primary

    def per_million(self, cpu: float) -> float:
        return cpu / self.readings * 1e6


# ---------------------------------------------------------------- measuring


def _stat(pid: int) -> tuple[int, float, float] | None:
    """(ppid, own CPU s, reaped children's CPU s) of a live process."""
    try:
        s = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    f = s[s.rindex(")") + 2:].split()
    return int(f[1]), (int(f[11]) + int(f[12])) / TICK, (int(f[13]) + int(f[14])) / TICK


class TreeCpu:
    """CPU seconds of some processes and all their descendants; an exited child's last
    sample is kept (it is also in its parent's cutime once reaped, so those are not added)."""

    def __init__(self, roots: list[int]) -> None:
        self.roots = set(roots)
        self.seen: dict[int, float] = {}

    def sample(self) -> float:
        stats = {int(d.name): st for d in Path("/proc").iterdir() if d.name.isdigit()
                 and (st := _stat(int(d.name))) is not None}
        tree = set(self.roots)
        grew = True
        while grew:
            new = {p for p, st in stats.items() if st[0] in tree} - tree
            grew, tree = bool(new), tree | new
        for p in tree:
            if p in stats:
                own, reaped = stats[p][1], stats[p][2] if p in self.roots else 0.0
                self.seen[p] = own + reaped
        return sum(self.seen.values())


STORE_ERRORS = re.compile(r"CROSSSLOT|MOVED|ASK |Fenced|fenced|store failure|Traceback|"
                          r"ClusterError|ResponseError")


def log_problems(text: str) -> list[str]:
    """Lines of a worker log that say the store went wrong (the run may still be right)."""
    return [line for line in text.splitlines() if STORE_ERRORS.search(line)]


def log_bytes(cfg: Config, contains: str, topics: list[str] | None = None) -> int:
    """Bytes of the segment files (*.log) of the run's topic partitions in the log dir."""
    data = ROOT / cfg.stack_dir / "kafka" / "data"
    if not data.is_dir():
        raise SystemExit(f"no Kafka log dir at {data}: this benchmark reads topic sizes from "
                         "the local broker's files (auth-kappa stack up)")
    total = 0
    for d in data.iterdir():
        name = d.name.rsplit("-", 1)[0]
        if contains in d.name and (topics is None or name in topics):
            total += sum(f.stat().st_size for f in d.glob("*.log"))
    return total


def groups_ready(admin, groups: list[str], members: int) -> bool:
    from confluent_kafka import ConsumerGroupState

    try:
        futs = admin.describe_consumer_groups(groups, request_timeout=5)
        for fut in futs.values():
            g = fut.result()
            if g.state != ConsumerGroupState.STABLE or len(g.members) != members:
                return False
        return True
    except Exception:  # noqa: BLE001 - not created yet
        return False


def archive_done(s3, bucket: str, ends: dict[tuple[str, int], int]) -> bool:
    for (topic, part), end in ends.items():
        if end == 0:
            continue
        try:
            body = s3.get_object(Bucket=bucket, Key=f"archive/_progress/{topic}/{part}.json")
        except Exception:  # noqa: BLE001 - not written yet
            return False
        if json.loads(body["Body"].read())["next_offset"] < end:
            return False
    return True


def archive_objects(s3, bucket: str) -> tuple[int, int, int]:
    """(bytes, objects, rows) of the Parquet data objects under archive/."""
    import pyarrow.parquet as pq

    size = count = rows = 0
    token: dict = {}
    while True:
        got = s3.list_objects_v2(Bucket=bucket, Prefix="archive/", **token)
        for o in got.get("Contents", []):
            if o["Key"].startswith("archive/_progress/") or not o["Key"].endswith(".parquet"):
                continue
            size, count = size + o["Size"], count + 1
            data = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
            rows += pq.ParquetFile(io.BytesIO(data)).metadata.num_rows
        if not got.get("IsTruncated"):
            return size, count, rows
        token = {"ContinuationToken": got["NextContinuationToken"]}


def drop_bucket(s3, bucket: str) -> None:
    try:
        while got := s3.list_objects_v2(Bucket=bucket, MaxKeys=1000).get("Contents", []):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": o["Key"]} for o in got]})
        s3.delete_bucket(Bucket=bucket)
    except Exception:  # noqa: BLE001 - best-effort cleanup of a private bucket
        pass


# ---------------------------------------------------------------- one run


def run_one(case: Case, workers: int, cfg: Config, tmp: Path, partitions: int,
            limit: float, archive: bool = True, target: RedisTarget | None = None) -> Result:
    from confluent_kafka.admin import AdminClient

    target = target or single(cfg.redis_url)
    kind = "single" if case.frame_size is None else "frames"
    base = f"uc{uuid.uuid4().hex[:8]}{case.key}{workers}{len(target.primaries)}"
    topics = [f"{base}-{u}" for u in UTILITIES]
    s3 = s3_client(cfg.s3_endpoint, cfg.s3_access_key, cfg.s3_secret_key, cfg.s3_region)
    admin = AdminClient({"bootstrap.servers": cfg.kafka})
    env = {**os.environ, "AUTH_TOPIC_PREFIX": f"{base}-", "AUTH_GROUP": base,
           "AUTH_NAMESPACE": base, "AUTH_S3_BUCKET": base, "AUTH_ARCHIVE": "01"[archive],
           "AUTH_ARCHIVE_ROLL_SECONDS": ROLL_SECONDS, "AUTH_PARTITIONS": str(partitions),
           "AUTH_CACHE_DIR": str(tmp / "cache"), **target.env}
    store = RedisWindowStore.connect(target.url, base, Config.load(env=env).window_specs(),
                                     group=base, cluster=target.cluster)
    procs = []
    try:
        ensure_topics(cfg.kafka, topics, partitions)
        ensure_bucket(s3, base)
        before_kafka = log_bytes(cfg, base)
        before_memory = target.used_memory()
        for i in range(workers):
            procs.append(start([PY, "-m", "auth_kappa.cli.main", "worker", "--log-level",
                                "warning"], env, ROOT, tmp / f"{base}-w{i}.log"))
        t0 = time.perf_counter()
        while not groups_ready(admin, [base, f"{base}-archive"][:1 + archive], workers):
            for i, p in enumerate(procs):
                if p.poll() is not None:
                    raise Wrong(f"worker {i} exited with {p.returncode}:\n"
                                f"{tail(tmp / f'{base}-w{i}.log')}")
            if time.perf_counter() - t0 > 120:
                raise Wrong(f"{workers} workers did not form stable groups within 120 s")
            time.sleep(0.5)
        cpu = TreeCpu([p.pid for p in procs])
        time.sleep(2.0)                      # settle, then measure Redis's background
        r0, q0, i0, b0 = target.cpu(), target.replica_cpu(), cpu.sample(), time.perf_counter()
        time.sleep(3.0)
        bg_rates = [(b - a) / (time.perf_counter() - b0)
                    for a, b in zip(r0, target.cpu(), strict=True)]
        q_rate = (target.replica_cpu() - q0) / (time.perf_counter() - b0)
        idle_rate = (cpu.sample() - i0) / (time.perf_counter() - b0)
        w0, r0, q0, t0 = cpu.sample(), target.cpu(), target.replica_cpu(), time.perf_counter()
        manifest, _ = produce(case, base, tmp / f"{base}-sim", partitions)
        ends = end_offsets(cfg.kafka, topics)
        messages = sum(ends.values())
        readings = sum(c["readings"] + c["duplicates"] for c in manifest["utilities"].values())
        while True:
            cpu.sample()
            if sum(store.offsets().values()) >= messages and (
                    not archive or archive_done(s3, base, ends)):
                break
            for i, p in enumerate(procs):
                if p.poll() is not None:
                    raise Wrong(f"worker {i} exited with {p.returncode}:\n"
                                f"{tail(tmp / f'{base}-w{i}.log')}")
            if time.perf_counter() - t0 > limit:
                done = sum(store.offsets().values())
                archived = "" if not archive else \
                    f", archive {'done' if archive_done(s3, base, ends) else 'not done'}"
                raise Wrong(f"{workers} workers did not finish within {limit:.0f} s "
                            f"({done:,} of {messages:,} messages committed{archived}); "
                            f"worker 0's log ends:\n{tail(tmp / f'{base}-w0.log')}")
            time.sleep(0.25)
        w1, r1, q1, t1 = cpu.sample(), target.cpu(), target.replica_cpu(), time.perf_counter()
        memory_growth = target.used_memory() - before_memory
        for p in procs:
            stop(p)
        procs = []
        bad = [ln for i in range(workers)
               for ln in log_problems(tail(tmp / f"{base}-w{i}.log", 10**8))]
        for line in bad[:5]:
            print(f"  worker log: {line[:300]}", file=sys.stderr)
        problems = len(bad)
        check = check_ours(store, manifest)
        r_bytes, r_keys = target.namespace_bytes(store.keys.everything)
        a_bytes, a_objects, a_rows = archive_objects(s3, base)
        if archive and a_rows != readings:
            raise Wrong(f"the archive holds {a_rows:,} rows, the simulator sent {readings:,} "
                        "readings")
        span = t1 - t0
        net = [max(0.0, b - a - rate * span) for a, b, rate in zip(r0, r1, bg_rates, strict=True)]
        if archive:
            check += f", archive {a_rows:,} rows"
        check += f", {problems} store errors in logs"
        return Result(kind, workers, archive, readings, messages, span, w1 - w0,
                      sum(net), sum(bg_rates) * span, idle_rate * span,
                      log_bytes(cfg, base, topics) - before_kafka,
                      log_bytes(cfg, base) - before_kafka, a_bytes, a_objects,
                      check, len(target.primaries), case.meters, net,
                      max(0.0, q1 - q0 - q_rate * span), r_bytes, r_keys, problems,
                      memory_growth, target.tags_per_primary(
                          [f"{{{u}:{p}}}" for u in UTILITIES for p in range(partitions)]))
    finally:
        for p in procs:
            stop(p)
        store.drop_namespace()
        drop_bucket(s3, base)
        delete_topics(cfg.kafka, contains=base)


# ---------------------------------------------------------------- report


def state_bytes_per_meter() -> dict[str, float]:
    """Per-meter key sizes at retention, from bench_state_size's section of the README."""
    text = STATE_README.read_text()

    def grab(label: str) -> float:
        m = re.search(re.escape(label) + r"[^|]*\|[^|]*\|\s*([\d,]+) B", text)
        if not m:
            raise SystemExit(f"benchmarks/README.md has no '{label}' row: run "
                             "benchmarks/bench_state_size.py first")
        return float(m.group(1).replace(",", ""))

    return {"minute_key": grab("per-meter 1m key"), "hour_key": grab("per-meter 1h key")}


def unit_costs(results: list[Result], frame_size: int, state: dict[str, float]) -> dict:
    """The plan's inputs: per case, the highest cost over the worker counts and Redis
    configurations (conservative)."""
    out: dict = {"measured": datetime.now(UTC).strftime("%Y-%m-%d"),
                 "source": "benchmarks/bench_unit_costs.py (make bench-costs)",
                 "frame_size": frame_size,
                 "redis_primaries_measured": sorted({r.primaries for r in results}),
                 "redis_bytes_per_meter_utility": state["minute_key"] + state["hour_key"],
                 "redis_bytes_source": "benchmarks/bench_state_size.py: MEMORY USAGE of one "
                                       "meter's 1m key (2 h) + 1h key (7 d), one utility"}
    for kind in ("single", "frames"):
        rs = [r for r in results if r.case == kind and r.archive]
        bare = [r for r in results if r.case == kind and not r.archive]
        if not rs:
            continue
        out[kind] = {
            "worker_cpu_s_per_million": round(max(r.per_million(r.worker_cpu_s) for r in rs), 2),
            "redis_cpu_s_per_million": round(max(r.per_million(r.redis_cpu_s) for r in rs), 2),
            "kafka_bytes_per_reading": round(max(r.kafka_bytes / r.readings for r in rs), 2),
            "kafka_all_bytes_per_reading": round(max(r.kafka_all_bytes / r.readings
                                                     for r in rs), 2),
            "archive_bytes_per_reading": round(max(r.archive_bytes / r.readings for r in rs), 2),
            "workers_measured": sorted({r.workers for r in rs}),
            "redis_cpu_s_per_million_by_primaries": {
                str(n): round(max(r.per_million(r.redis_cpu_s) for r in rs
                                  if r.primaries == n), 2)
                for n in sorted({r.primaries for r in rs})}}
        if bare:
            out[kind]["worker_cpu_s_per_million_without_archiver"] = round(
                max(r.per_million(r.worker_cpu_s) for r in bare), 2)
    return out


def redis_label(r: Result) -> str:
    return "1" if r.primaries == 1 else f"{r.primaries} (cluster)"


def per_meter(r: Result, used: bool = False) -> float:
    """Redis bytes of the run's namespace per meter and utility, as the run left it
    (`used`: the primaries' used_memory growth over the run instead)."""
    return (r.redis_used_growth if used else r.redis_bytes) / max(1, r.meters * len(UTILITIES))


def busiest_share(r: Result) -> float:
    """The busiest primary's part of the Redis CPU (1/primaries if spread evenly)."""
    net = r.redis_cpu_by_primary or [r.redis_cpu_s]
    return max(net) / sum(net) if sum(net) else float("nan")


def table(results: list[Result]) -> str:
    rows = ["| case | workers | Redis primaries | readings | messages | worker CPU s / M "
            "readings (idle share) | Redis CPU s / M readings (background) | Redis B / meter "
            "and utility at the end (used_memory growth) | Kafka B / reading (all topics) | "
            "archive B / reading (objects, rows each) | wall s | check |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        archive = (f"**{r.archive_bytes / r.readings:.2f}** ({r.archive_objects}, "
                   f"{r.readings / max(1, r.archive_objects):,.0f})" if r.archive else "-")
        rows.append(
            f"| {r.case} | {r.workers}{'' if r.archive else ', no archiver'} | "
            f"{redis_label(r)} | "
            f"{r.readings:,} | {r.messages:,} | **{r.per_million(r.worker_cpu_s):.1f}** "
            f"({r.per_million(r.worker_idle_cpu_s):.1f}) | "
            f"**{r.per_million(r.redis_cpu_s):.2f}** ({r.per_million(r.redis_bg_cpu_s):.2f}) | "
            f"{per_meter(r):,.0f} ({per_meter(r, used=True):,.0f}) | "
            f"**{r.kafka_bytes / r.readings:.1f}** ({r.kafka_all_bytes / r.readings:.1f}) | "
            f"{archive} | {r.seconds:.1f} | {r.check} |")
    return "\n".join(rows)


def ratios(results: list[Result]) -> str:
    """Per case and worker count: a cluster's costs over one primary's, and how evenly the
    cluster's primaries shared the Redis CPU."""
    rows = ["| case | workers | worker CPU | Redis CPU (primaries) | Redis CPU of the replicas "
            "/ primaries | Redis B per meter (used_memory growth) | busiest primary's share of "
            "Redis CPU (each primary's; the partition tags it serves) | wall s |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    one = {(r.case, r.workers): r for r in results if r.archive and r.primaries == 1}
    for c in results:
        o = one.get((c.case, c.workers))
        if not c.archive or c.primaries == 1 or o is None:
            continue
        net = c.redis_cpu_by_primary or []
        order = sorted(range(len(net)), key=lambda i: -net[i])
        shares = ", ".join(f"{net[i] / sum(net):.0%}" for i in order) if sum(net) else "-"
        if c.tags_by_primary and len(c.tags_by_primary) == len(net):
            shares += "; partition tags " + "/".join(str(c.tags_by_primary[i]) for i in order)
        rows.append(
            f"| {c.case} | {c.workers} | {c.worker_cpu_s / o.worker_cpu_s:.2f}x | "
            f"**{c.redis_cpu_s / o.redis_cpu_s:.2f}x** | "
            f"{c.redis_replica_cpu_s / max(1e-9, c.redis_cpu_s):.2f} | "
            f"{per_meter(c) / per_meter(o):.2f}x ({per_meter(c, True) / per_meter(o, True):.2f}x)"
            f" | {busiest_share(c):.0%} ({shares}) | "
            f"{c.seconds / o.seconds:.2f}x |")
    return "\n".join(rows) if len(rows) > 2 else ""


def write_defaults(costs: dict) -> None:
    """The package's copy, so `auth-kappa plan` works from a wheel without the repo."""
    PACKAGE_OUT.write_text(
        '"""Measured unit costs shipped with the package: `auth-kappa plan` defaults.\n\n'
        "Written by benchmarks/bench_unit_costs.py (make bench-costs); do not edit by hand.\n"
        '"""\n\nUNIT_COSTS: dict = ' + pprint.pformat(costs, width=90, sort_dicts=True) + "\n")


def parse_counts(text: str, flag: str, allowed: tuple[int, ...] | None = None) -> list[int]:
    """'1,2,4' -> [1, 2, 4]; anything else is one line naming the flag."""
    try:
        counts = [int(n) for n in text.split(",")]
    except ValueError:
        raise SystemExit(f"{flag} {text!r}: expected positive whole numbers, e.g. 1,2,4") from None
    if not counts or min(counts) < 1 or (allowed and set(counts) - set(allowed)):
        raise SystemExit(f"{flag} {text!r}: expected "
                         + (" and/or ".join(map(str, allowed)) if allowed else
                            "positive whole numbers, e.g. 1,2,4"))
    return list(dict.fromkeys(counts))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--meters", type=int, default=20_000)
    p.add_argument("--single-duration", default="90s", help="simulated time, single messages")
    p.add_argument("--frames-duration", default="5m", help="simulated time, frames")
    p.add_argument("--frame-size", type=int, default=500)
    p.add_argument("--partitions", type=int, default=4, help="per utility topic")
    p.add_argument("--workers", default="1,2,4", help="worker counts to measure")
    p.add_argument("--redis", default="1,3",
                   help="Redis primaries: 1 (the stack's server), 3 (a private cluster)")
    p.add_argument("--cases", default="single,frames")
    p.add_argument("--no-split", action="store_true",
                   help="skip the extra 1-worker run without the archiver")
    p.add_argument("--no-write", action="store_true",
                   help="print only: leave README, unit_costs.json and the defaults alone")
    args = p.parse_args()
    cfg = Config.load()
    counts = parse_counts(args.workers, "--workers")
    configs = parse_counts(args.redis, "--redis", allowed=(1, 3))
    cases = []
    for c in args.cases.split(","):
        if c == "single":
            cases.append(Case("s", args.meters, parse_duration(args.single_duration), None))
        elif c == "frames":
            cases.append(Case("f", args.meters, parse_duration(args.frames_duration),
                              args.frame_size))
        else:
            raise SystemExit(f"--cases: unknown case {c!r}; use single, frames or both")
    state = state_bytes_per_meter()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                          capture_output=True, text=True).stdout.strip()
    results: list[Result] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-costs-") as tmp, \
            contextlib.ExitStack() as up:
        targets = {1: single(cfg.redis_url)}
        if 3 in configs:
            print("starting a private Redis Cluster (stack up redis --redis-cluster) ...",
                  file=sys.stderr, flush=True)
            targets[3] = up.enter_context(private_cluster())
        try:
            for case in cases:
                runs = [(k, n, True) for k in configs for n in counts]
                runs += [(configs[0], 1, False)] * (not args.no_split)
                for k, n, archive in runs:
                    print(f"[{case.label}] {n} worker(s){'' if archive else ', no archiver'}, "
                          f"{targets[k].label} ...", file=sys.stderr, flush=True)
                    r = run_one(case, n, cfg, Path(tmp), args.partitions, limit=300,
                                archive=archive, target=targets[k])
                    print(f"  {r.per_million(r.worker_cpu_s):.1f} worker CPU s/M, "
                          f"{r.per_million(r.redis_cpu_s):.2f} Redis CPU s/M, "
                          f"{per_meter(r):,.0f} Redis B/meter, "
                          f"{r.kafka_bytes / r.readings:.1f} Kafka B, "
                          f"{r.archive_bytes / r.readings:.2f} archive B per reading; "
                          f"{r.seconds:.1f} s", file=sys.stderr, flush=True)
                    results.append(r)
        except Wrong as exc:
            print(f"bench_unit_costs: FAILED: {exc}", file=sys.stderr)
            return 1
    costs = unit_costs(results, args.frame_size, state)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "auth_kappa"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    costs["machine"] = (f"code at {head}{' with uncommitted changes in auth_kappa/' * bool(dirty)}"
                        f"; {os.cpu_count()} cores; Kafka and Redis on the same machine")
    costs["runs"] = [asdict(r) for r in results]
    cmd = "auth-kappa stack up && make bench-costs"
    flags = {"meters": 20_000, "single_duration": "90s", "frames_duration": "5m",
             "frame_size": 500, "partitions": 4, "workers": "1,2,4", "cases": "single,frames",
             "redis": "1,3"}
    extra = [f"--{k.replace('_', '-')} {getattr(args, k)}" for k, v in flags.items()
             if getattr(args, k) != v]
    extra += ["--no-split"] * args.no_split
    if extra:
        cmd = ".venv/bin/python benchmarks/bench_unit_costs.py " + " ".join(extra)
    body = f"""## Unit costs per reading (`benchmarks/bench_unit_costs.py`)

Measured {costs['measured']} ({costs['machine']}; {time.perf_counter() - started:.0f} s for
the whole run). N `auth-kappa worker` processes in one group (stream + archiver, as deployed;
archive rolls of {ROLL_SECONDS}) consume {args.partitions} partitions per utility while
`auth-kappa simulate --to kafka` fills them ({args.meters:,} meters; frames of
{args.frame_size}). Each runs against 1 Redis primary (the stack's server, shared with
whatever else runs) and against 3 primaries: a private Redis Cluster (3 primaries, 3
replicas, started by `auth-kappa stack up redis --redis-cluster`; workers with
AUTH_REDIS_CLUSTER=1). CPU is counted from the moment the workers' groups are stable until
every offset is in Redis and in the archive, so time spent waiting for a core is not
counted, as wall seconds are; CPU seconds still grow when other load shares the cores
(caches, frequency): measure on a quiet machine.

{table(results)}

{"Cluster over one primary, same case and worker count (ratios of the figures above):" if ratios(results) else ""}

{ratios(results)}

- Worker CPU: /proc/<pid>/stat utime+stime of the worker processes and their children.
  In brackets: what the same workers use idle (polling, heartbeats), measured over 3 s
  before the run and charged over its seconds; it is included in the figure, as it is
  in production, and it is why more workers cost a little more per reading here.
- Redis CPU: INFO cpu used_cpu_sys+used_cpu_user over the run, summed over the primaries,
  each minus its background rate over 3 idle seconds just before (in brackets: the
  background subtracted). A cluster's replicas are not in the figure (the ratio table
  gives their CPU as a fraction of the primaries'); the busiest primary's share says how
  evenly the partitions' hash tags ({{utility:p}}) spread over the primaries.
- Redis B / meter and utility: MEMORY USAGE (SAMPLES 0) of every key of the run's namespace
  when it ends, summed over the primaries, / (meters x 3). This is the state a short run
  leaves (a few minutes of windows), for comparing layouts; the plan's bytes per meter at
  full retention come from benchmarks/bench_state_size.py. In brackets: growth of INFO
  used_memory over the run, summed over the primaries (counts what MEMORY USAGE does not,
  e.g. a cluster's per-key slot bookkeeping, but on the shared server also anything else
  written meanwhile).
- Store errors in logs: worker log lines matching CROSSSLOT, MOVED, ASK, Fenced/fenced,
  store failure, Traceback, ClusterError or ResponseError.
- Kafka: growth of the source topics' segment files (*.log) in the broker's log dir: record
  batches as stored, one replica (multiply by the replication factor). In brackets: every
  topic of the run, including what the workers write (closed windows, late readings).
- Archive: bytes of the Parquet objects under archive/ of a private bucket (in brackets: the
  number of objects and readings per object). Rolls here close after {ROLL_SECONDS} (to keep the
  run short), production rolls after 64 MiB or 60 s; compare rows per object above to see
  how much roll size moves the bytes.
- Check: per utility the state 1-minute windows in Redis count exactly the manifest's valid
  readings and sum to its consumption; the archive holds one row per reading.
- The plan's inputs (benchmarks/unit_costs.json, auth_kappa/capacity_defaults.py) take, per
  case, the highest cost over the worker counts and Redis configurations.

Reproduce: `{cmd}`
"""
    print(body)
    if not args.no_write:
        write_section("bench_unit_costs", body)
        if all(c in costs for c in ("single", "frames")):
            JSON_OUT.write_text(json.dumps(costs, indent=2) + "\n")
            write_defaults({k: v for k, v in costs.items() if k != "runs"})
        else:
            print("bench_unit_costs: both cases are needed to write the plan's defaults; "
                  "left unit_costs.json and capacity_defaults.py alone", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
