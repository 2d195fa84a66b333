"""Runs a peer (Bytewax, Pathway, Flink) for benchmarks/bench_worker.py and checks it.

Each peer is one process in its own venv, .venv-peers/<name>, made here from setup.cfg's
`peers-<name>` extra pinned by benchmarks/peers/pins/<name>.txt (their pyarrow, pandas and
numpy pins clash with the project's and with each other's, so they cannot share .venv or
constraints.txt). Flink's Kafka SQL connector jar is fetched with mvn, matched to the
PyFlink version.

Progress = the offsets the peer's consumer group committed on the source topics (times
readings per message), as for Quix. When the peer has read everything, its windows are
read back from its output topic (untimed; a peer whose clock moves with system time gets
DRAIN_S to close its last windows) and compared with the brute force (truth.py).
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import orjson
import pandas as pd

from benchmarks.peers import truth

ROOT = Path(__file__).resolve().parents[2]
VENVS = ROOT / ".venv-peers"
PINS = Path(__file__).with_name("pins")
DRAIN_S = 120.0
FLINK_KAFKA = {"2.2": "5.0.0-2.2"}   # PyFlink minor -> flink-sql-connector-kafka version


@dataclass(frozen=True)
class Peer:
    name: str
    engine: str              # the benchmark table's label (first word = ratio column)
    frontier: str            # truth.compare: "" all windows close, "utility" or "meter"
    note: str                # the README's line: what it runs, and non-default settings
    frames: str = ""         # why it does not run the frames case ("" = it does)
    progress: str = "offsets"   # "windows": readings in its output so far (see its note)


AUTOCOMMIT = ("its consumer group auto-commits every 1 s (the benchmark's progress is the "
              "committed offsets, as for Quix)")
PEERS = {p.name: p for p in (
    Peer("bytewax", "Bytewax tumbling window", frontier="meter", note=(
        "`python -m bytewax.run` (one process, one worker, no recovery); per utility "
        "Kafka input, parse in a Python `filter_map` (frames: `flat_map`), `key_on` "
        "service_id, `fold_window` (count, sum) with an `EventClock` on end_ts and "
        "`TumblingWindower(60 s)`, closed windows to Kafka as JSON. Not defaults: "
        + AUTOCOMMIT + " (Bytewax's source commits nothing); the clock's system time "
        "stands still (`now_getter`) with `wait_for_system_duration=0`, so its watermark "
        "per meter is the meter's newest end_ts and a window closes at the meter's first "
        "reading past it, as in Quix: with the wall clock the watermark also moves with "
        "system time, and replaying this backlog slower than real time dropped readings as "
        "late (20,000 meters at ~8k/s, wait 10 s: 4-6 of each first window's 11 readings "
        "kept); `to_system_utc` returns None (no wake-ups by system time): by default each "
        "key is woken at its windows' close time, months before the wall clock here, so "
        "every key was woken on every batch (2,571 -> 17,641 readings/s, 20,000 meters x "
        "30 s).")),
    Peer("pathway", "Pathway windowby tumbling", frontier="", progress="windows", note=(
        "`pw.run()` (one process, one thread, no persistence, minibatch every 1.5 s, all "
        "its defaults); per utility `pw.io.kafka.read(format=\"raw\")`, a Python UDF to "
        "parse the CSV line (its Kafka reader has no CSV format) or expand a frame, "
        "`windowby(end_ts, tumbling(60), instance=service_id).reduce(count, sum)`, "
        "`pw.io.kafka.write(format=\"json\")`; its default behaviour re-emits every "
        "changed window per minibatch (retraction + insertion), folded by the check. Its "
        "progress is the readings in the windows it has emitted (the harness folds its "
        "output as it comes): its reader runs ahead of the computation, so its offsets say "
        "nothing of what was processed.")),
    Peer("flink", "Flink SQL TUMBLE (PyFlink)", frontier="utility", note=(
        "a PyFlink `TableEnvironment` in streaming mode (one python process and the JVM "
        "it starts, a local MiniCluster at its default parallelism = 2 cores, no "
        "checkpoints); per utility a Kafka SQL table (format csv, event time "
        "TO_TIMESTAMP_LTZ(end_ts), WATERMARK ts - 5 s) and `TUMBLE(..., INTERVAL '1' "
        "MINUTE)` GROUP BY window, service_id (COUNT, SUM) into a Kafka table (json), one "
        "statement set. Not defaults: " + AUTOCOMMIT + " (`properties.enable.auto.commit`; "
        "without checkpoints Flink commits nothing); `table.local-time-zone` = UTC. Its "
        "watermark moves only with data, so each run's newest windows stay open: the check "
        "takes every window up to the newest emitted one."),
        frames="Flink SQL declares a watermark only on a source column, and a frame's "
        "event times come out of a UDTF after the source"),
)}


class Unavailable(Exception):
    """The peer cannot be installed or started here: reported, not a benchmark failure."""


def requirements(name: str) -> list[str]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    extra = cfg["options.extras_require"].get(f"peers-{name}", "")
    return [r.strip() for r in extra.splitlines() if r.strip()]


def ensure_venv(name: str) -> Path:
    """.venv-peers/<name> with its extra and pins; re-made when either changes."""
    venv = VENVS / name
    py = venv / "bin" / "python"
    pins = PINS / f"{name}.txt"
    want = "\n".join([*requirements(name), pins.read_text()])
    stamp = venv / ".requirements"
    if py.exists() and stamp.exists() and stamp.read_text() == want:
        return py
    base = getattr(sys, "_base_executable", None) or sys.executable
    subprocess.run([base, "-m", "venv", "--clear", str(venv)], check=True)
    run = subprocess.run([str(py), "-m", "pip", "install", "-q", "-c", str(pins),
                          *requirements(name)], capture_output=True, text=True)
    if run.returncode:
        raise Unavailable(f"pip could not install {name}: "
                          f"{(run.stderr.strip().splitlines() or ['?'])[-1][:200]}")
    stamp.write_text(want)
    return py


def flink_jar(py: Path) -> Path:
    """flink-sql-connector-kafka for this PyFlink, fetched once with mvn dependency:copy."""
    version = subprocess.run([str(py), "-c", "import pyflink.version as v; print(v.__version__)"],
                             capture_output=True, text=True).stdout.strip()
    connector = FLINK_KAFKA.get(".".join(version.split(".")[:2]))
    if not connector:
        raise Unavailable(f"no Kafka SQL connector known for PyFlink {version!r}")
    jars = py.parents[1] / "jars"
    jar = jars / f"flink-sql-connector-kafka-{connector}.jar"
    if jar.exists():
        return jar
    mvn = shutil.which("mvn")
    if not mvn:
        raise Unavailable("Maven (mvn) is needed to fetch Flink's Kafka connector")
    run = subprocess.run([mvn, "-q", "-B", "dependency:copy",
                          f"-Dartifact=org.apache.flink:flink-sql-connector-kafka:{connector}",
                          f"-DoutputDirectory={jars}"], capture_output=True, text=True)
    if run.returncode or not jar.exists():
        last = (run.stdout + run.stderr).strip().splitlines()[-1:] or ["(no output)"]
        raise Unavailable(f"mvn could not fetch the Flink Kafka connector: {last[0][:200]}")
    return jar


def version_of(name: str) -> str:
    """'bytewax 0.21.1' etc. for the report; '' when the venv is not there."""
    py = VENVS / name / "bin" / "python"
    dist = {"flink": "apache-flink"}.get(name, name)
    if not py.exists():
        return ""
    out = subprocess.run([str(py), "-c", "import importlib.metadata as m; "
                          f"print(m.version({dist!r}))"], capture_output=True, text=True)
    if out.returncode:
        return ""
    text = f"{dist} {out.stdout.strip()}"
    if name == "flink":
        jar = next((VENVS / name / "jars").glob("flink-sql-connector-kafka-*.jar"), None)
        text += f" with {jar.stem}" if jar else ""
    return text


# ---------------------------------------------------------------- output


class Windows:
    """The peer's output topic, folded as it grows: rows with a `diff` (Pathway's updates)
    add or retract, rows without one are final windows."""

    def __init__(self, kafka: str, topic: str) -> None:
        from confluent_kafka import Consumer

        self.consumer = Consumer({"bootstrap.servers": kafka, "group.id": f"{topic}-check",
                                  "auto.offset.reset": "earliest",
                                  "enable.auto.commit": False})
        self.consumer.subscribe([topic])
        self.rows: dict[tuple, int] = {}
        self.total = 0

    def poll(self, seconds: float = 1.0, until_idle: bool = False) -> None:
        """Fold what arrived within `seconds` (or until nothing more is there)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            msgs = self.consumer.consume(10_000, 0.05 if until_idle else 0.2)
            if until_idle and not msgs:
                return
            for m in msgs:
                if m.error() or m.value() is None:
                    continue
                v = orjson.loads(m.value())
                row = (v["utility"], v["service_id"], int(v["start"]), int(v["count"]),
                       float(v["sum"]))
                diff = int(v.get("diff", 1))
                self.rows[row] = self.rows.get(row, 0) + diff
                self.total += row[3] * diff

    def covered(self) -> int:
        """Readings in the windows emitted so far (an update retracts the old row)."""
        return self.total

    def frames(self) -> dict[str, pd.DataFrame]:
        live = [r for r, n in self.rows.items() for _ in range(max(n, 0))]
        df = pd.DataFrame(live, columns=["utility", *truth.KEY, "count", "sum"])
        return {u: g.drop(columns="utility").reset_index(drop=True)
                for u, g in df.groupby("utility")}

    def close(self) -> None:
        self.consumer.close()


# ---------------------------------------------------------------- one run


def command(peer: Peer, py: Path, env: dict[str, str]) -> list[str]:
    if peer.name == "bytewax":
        return [str(py), "-m", "bytewax.run", "benchmarks.peers.bytewax_tumbling:get_flow"]
    if peer.name == "flink":
        env["BENCH_FLINK_JAR"] = str(flink_jar(py))
    return [str(py), str(ROOT / "benchmarks" / "peers" / f"{peer.name}_tumbling.py")]


def run_peer(bw: ModuleType, name: str, case, base: str, manifest: dict, ends: dict, cfg,
             tmp: Path, limit: float):
    """One peer on one case: a bench_worker Run (bw = the bench_worker module)."""
    from confluent_kafka.admin import AdminClient, NewTopic

    peer = PEERS[name]
    readings = sum(c["readings"] for c in manifest["utilities"].values())
    run = bw.Run(peer.engine, readings, sum(ends.values()))
    if case.frame_size and peer.frames:
        run.check = "not run (frames)"
        run.notes.append(f"not run on frames: {peer.frames}")
        return run
    try:
        py = ensure_venv(name)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_PREFIX": f"{base}-",
               "BENCH_GROUP": f"{base}-{name}", "BENCH_OUT": f"{base}-{name}-windows",
               "BENCH_KAFKA": cfg.kafka, "BENCH_STATE": str(tmp / f"{name}-state"),
               **({"BENCH_FRAMES": "1"} if case.frame_size else {})}
        cmd = command(peer, py, env)
    except Unavailable as exc:
        run.check = f"not run: {exc}"
        return run
    admin = AdminClient({"bootstrap.servers": cfg.kafka})
    for fut in admin.create_topics([NewTopic(env["BENCH_OUT"], 1, 1)]).values():
        fut.result(timeout=30)
    sources, ratio = {t for t, _ in ends}, readings / run.messages
    group = env["BENCH_GROUP"]

    def progress() -> float:
        if peer.progress == "windows":
            out.poll(1.0, until_idle=True)
            return float(out.covered())
        done = bw.committed_offsets(admin, group)
        return float(sum(v for (t, _), v in done.items() if t in sources)) * ratio

    log = tmp / f"{name}-{case.key}.log"
    LOADS.append(os.getloadavg()[0])
    t0 = time.perf_counter()
    out = Windows(cfg.kafka, env["BENCH_OUT"])
    proc = bw.start(cmd, env, ROOT, log)
    try:
        try:
            bw.watch(run, proc, t0, progress, limit, log, every=0.5)
            if run.complete:
                drain(out, readings, proc, peer)
        finally:
            bw.stop(proc)
        # a peer whose windows close with its watermark is checkable when stopped early too
        if run.complete or peer.frontier:
            want = truth.expected_windows(case.meters, case.duration)
            out.poll(2.0)
            run.check, covered = truth.compare(out.frames(), want, frontier=peer.frontier)
            run.notes.append(f"its windows hold {covered:,} of {readings:,} readings"
                             + FRONTIER_NOTE.get(peer.frontier, ""))
            if not covered:
                run.check = "not checked (no window closed)"
            elif not run.complete:
                run.check += " (partial run)"
        else:
            run.check = "not checked (partial)"
    finally:
        out.close()
    return run


def drain(out: Windows, readings: int, proc: subprocess.Popen, peer: Peer) -> None:
    """Untimed: let the peer close its last windows (all of them, or a few seconds for a
    peer whose watermark only moves with data)."""
    end = time.monotonic() + (10.0 if peer.frontier else DRAIN_S)
    while time.monotonic() < end and proc.poll() is None:
        out.poll(1.0)
        if out.covered() >= readings:
            return


FRONTIER_NOTE = {
    "utility": " (checked: every window up to the newest it emitted; its watermark moves "
               "only with new data, so the newest windows stay open)",
    "meter": " (checked: per meter, every window up to the newest it emitted; its clock is "
             "per meter, so each meter's newest windows stay open)"}
LOADS: list[float] = []     # 1-minute load average as each peer run started


def describe() -> list[str]:
    """The README's lines on how each peer ran (its settings that differ from defaults)."""
    lines = [f"- {p.engine} (`benchmarks/peers/{p.name}_tumbling.py`, "
             f"{version_of(p.name) or 'not installed'}): {p.note}" for p in PEERS.values()]
    lines.append("- Ratios: the *ours vs baselines* column divides steady rates; Flink's and "
                 "Pathway's startups are long (the JVM and job; Pathway's first minibatch "
                 "window output), so compare *total readings/s* too. `make bench-peers` runs "
                 "this benchmark after making .venv-peers/ (setup.cfg's peers-* extras, pins "
                 "in benchmarks/peers/pins/; Flink's Kafka connector by `mvn "
                 "dependency:copy`).")
    if LOADS:
        lines.append(f"- Machine load: {os.cpu_count()} cores shared with other work; 1-minute "
                     f"load average as each peer started: "
                     + ", ".join(f"{x:.1f}" for x in LOADS)
                     + f"; at the end {os.getloadavg()[0]:.1f}.")
    return lines
