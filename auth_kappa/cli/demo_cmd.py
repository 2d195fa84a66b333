"""`auth-kappa demo [--real]`: simulate a fleet, run the one topology on it, show the answers.

Embedded by default (no services). `--real` does the same through Kafka, a Faust
worker and Redis, and reads the answers back with Engine.connect.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from auth_kappa import kafka_clients
from auth_kappa.config import Config
from auth_kappa.engine import Engine
from auth_kappa.topology.schema import UNITS, UTILITIES

SIM = ["--meters", "500", "--duration", "30m", "--seed", "7", "--late-fraction", "0.01",
       "--late-delay", "3m", "--duplicate-fraction", "0.01", "--malformed-fraction", "0.002"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="simulate a fleet and run the topology on it",
                       description=__doc__)
    p.add_argument("--real", action="store_true",
                   help="through the real stack (Kafka, a Faust worker, Redis)")
    p.add_argument("--out", default="out/demo", help="working folder")
    p.add_argument("--dashboard", action=argparse.BooleanOptionalAction, default=None,
                   help="then serve the results on the dashboard until Ctrl-C (default: only "
                        "when stdout is a terminal)")
    p.add_argument("--port", type=int, default=8000, help="dashboard port")
    p.set_defaults(func=run)


def say(text: str) -> None:
    print(f"demo: {text}", flush=True)


def run(args: argparse.Namespace) -> int:
    from auth_kappa.cli.main import main as cli
    from simulators.cli import writable_folder

    out = Path(args.out)
    writable_folder(out, "--out")   # a bad --out fails before anything runs
    say(f"simulating 500 meters x 30 min with late, duplicate and malformed readings -> {out}")
    if cli(["simulate", *SIM, "--out", str(out / "sim"), "--quiet"]) != 0:
        return 1
    manifest = json.loads((out / "sim" / "manifest.json").read_text())
    config = None
    if args.real:
        engine, config = _real(out, manifest)
    else:
        engine = _embedded(out)
    _report(engine, manifest, out)
    from dashboards.demo import serve_demo, wanted

    if wanted(args.dashboard):
        print()
        serve_demo(out, args.port, config)
    return 0


def _embedded(out: Path) -> Engine:
    say("running the embedded engine (1m and 1h windows, 30 s grace) on the files")
    engine = Engine.embedded(window=["1m", "1h"], grace="30s", out_dir=out / "engine")
    started = time.perf_counter()
    engine.ingest(out / "sim")
    engine.flush()
    s = engine.stats
    say(f"{s.accepted:,} accepted, {s.duplicates:,} duplicates dropped, {s.late:,} late "
        f"(-> {out / 'engine' / 'late.parquet'}), {s.quarantined:,} quarantined "
        f"(-> {out / 'engine' / 'quarantine.jsonl'}) in {time.perf_counter() - started:.1f}s")
    return engine


def _real(out: Path, manifest: dict) -> tuple[Engine, Config]:
    from auth_kappa.cli.main import main as cli
    from auth_kappa.kafka_admin import ensure_topics

    stamp = str(int(time.time()))
    env_overrides = {"AUTH_TOPIC_PREFIX": f"demo{stamp}-", "AUTH_GROUP": f"demo{stamp}",
                     "AUTH_NAMESPACE": f"demo{stamp}"}
    config = Config.load(**{"topic_prefix": env_overrides["AUTH_TOPIC_PREFIX"],
                            "group": env_overrides["AUTH_GROUP"],
                            "namespace": env_overrides["AUTH_NAMESPACE"]})
    say("starting the stack (Kafka, Redis, S3) if it is not running")
    if cli(["stack", "up"]) != 0:
        return sys.exit(1)
    ensure_topics(kafka_clients.librdkafka(config), config.source_topics, config.partitions,
                  replication=config.replication)
    say(f"producing the same fleet into Kafka topics {', '.join(config.source_topics)}")
    cli(["simulate", *SIM, "--to", "kafka", "--topic-prefix", config.topic_prefix,
         "--out", str(out / "sim-kafka"), "--quiet"])
    say("starting a Faust worker (faust -A auth_kappa.app worker)")
    import os

    log = open(out / "worker.log", "wb")
    worker = subprocess.Popen([sys.executable, "-m", "faust", "-A", "auth_kappa.app", "worker",
                               "-l", "info", "--without-web"], env={**os.environ,
                                                                    **env_overrides},
                              stdout=log, stderr=subprocess.STDOUT)
    engine = Engine.connect(config)
    want = sum(manifest["utilities"][u]["messages"] for u in UTILITIES)
    try:
        deadline = time.monotonic() + 180
        while sum(engine._store.offsets().values()) < want:
            if worker.poll() is not None or time.monotonic() > deadline:
                say(f"worker did not finish; see {out / 'worker.log'}")
                sys.exit(1)
            time.sleep(0.5)
        say(f"worker committed all {want:,} messages to Redis (namespace {config.namespace})")
    finally:
        worker.terminate()
        worker.wait(30)
    return engine, config


def _report(engine: Engine, manifest: dict, out: Path) -> None:
    print()
    print("valid readings (simulator ground truth) = counted in windows + routed late:")
    late = engine.late() if engine.is_embedded else pd.DataFrame(columns=["utility"])
    for u in UTILITIES:
        states = engine.windows(level="state", utility=u, window="1m")
        truth = manifest["utilities"][u]["valid_readings"]
        counted, routed = int(states["count"].sum()), int((late["utility"] == u).sum())
        check = "ok" if counted + routed == truth else "MISMATCH"
        if not engine.is_embedded:
            routed, check = truth - counted, "late topic"
        print(f"  {u:12} {truth:>9,} = {counted:>9,} + {routed:>6,}  [{check}]  "
              f"{states['sum'].sum():.6f} {UNITS[u]} in windows")
    hourly = engine.windows(level="state", utility="electricity", window="1h")
    top = hourly.groupby("key")["sum"].sum().sort_values(ascending=False).head(10)
    print("\ntop-10 states, electricity kWh:")
    for state, kwh in top.items():
        print(f"  {state}  {kwh:10.3f}")
    registry = pd.read_parquet(out / "sim" / "registry.parquet")
    sid = registry["service_id"].iloc[0]
    meter = engine.windows(level="meter", utility="electricity", window="1m", key=sid)
    print(f"\nhousehold {sid} ({registry['user_name'].iloc[0]}), last 5 minutes, kWh:")
    for row in meter.tail(5).itertuples():
        stamp = row.window_start.strftime("%H:%M")
        print(f"  {stamp}  {row.sum:.4f}  ({row.count} readings)")
