"""Drive real `faust worker` processes against the real stack, with private topics/state."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from auth_kappa.config import Config
from auth_kappa.kafka_admin import ensure_topics
from auth_kappa.state.redis_store import RedisWindowStore
from auth_kappa.topology.schema import UTILITIES

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class LiveCase:
    """One isolated pipeline: topic prefix, consumer group and Redis namespace of its own."""

    name: str
    workdir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    workers: list[subprocess.Popen] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "AUTH_TOPIC_PREFIX": f"{self.name}-", "AUTH_GROUP": self.name,
                "AUTH_NAMESPACE": self.name, "AUTH_COMMIT_INTERVAL": "0.5",
                "AUTH_SESSION_TIMEOUT": "6s",
                # the archiver is opt-in here: tests that want it give a private bucket
                "AUTH_ARCHIVE": "0", **self.extra_env}

    @property
    def config(self) -> Config:
        return Config.load(env=self.env)

    def create_topics(self, partitions: int = 4) -> None:
        c = self.config
        ensure_topics(c.kafka, c.source_topics, partitions)

    def simulate(self, *args: str, to: str = "kafka") -> dict:
        out = self.workdir / f"sim-{to}"
        cmd = [sys.executable, "-m", "auth_kappa.cli.main", "simulate", "--to", to,
               "--out", str(out), "--quiet", *args]
        if to == "kafka":
            cmd += ["--topic-prefix", f"{self.name}-"]
        run = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        return json.loads((out / "manifest.json").read_text())

    def start_worker(self) -> subprocess.Popen:
        log = open(self.workdir / f"worker-{len(self.workers)}.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "faust", "-A", "auth_kappa.app", "worker",
                                 "-l", "info", "--without-web"], env=self.env, cwd=ROOT, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.workers.append(proc)
        return proc

    def store(self) -> RedisWindowStore:
        return RedisWindowStore.from_config(self.config)   # a cluster's with AUTH_REDIS_CLUSTER

    def committed(self) -> dict[str, int]:
        """Messages covered by committed checkpoints, per utility."""
        done = {u: 0 for u in UTILITIES}
        for name, offset in self.store().offsets().items():
            done[name.split(":")[0]] += offset
        return done

    def wait_until(self, target: dict[str, int], timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.committed() == target:
                return
            for w in self.workers:
                assert w.poll() is None or w.returncode in (-9, 0), self.log_tail()
            time.sleep(0.5)
        raise AssertionError(f"not caught up: {self.committed()} != {target}\n{self.log_tail()}")

    def logs(self) -> list[str]:
        return [p.read_text(errors="replace") for p in sorted(self.workdir.glob("worker-*.log"))]

    def log_tail(self) -> str:
        return "\n".join(text[-3000:] for text in self.logs())

    def wait_for_log(self, text: str, workers: int, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while sum(text in log for log in self.logs()) < workers:
            assert time.monotonic() < deadline, f"no {text!r} from {workers} workers\n" + \
                self.log_tail()
            time.sleep(0.3)

    def kill(self, proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=60)

    def stop_all(self) -> None:
        for w in self.workers:
            if w.poll() is None:
                os.killpg(w.pid, signal.SIGTERM)
        for w in self.workers:
            try:
                w.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(w.pid, signal.SIGKILL)

    def cleanup(self) -> None:
        self.stop_all()
        self.store().drop_namespace()

    def state_totals(self, size: int = 60) -> dict[str, tuple[int, float]]:
        s = self.store()
        out = {}
        for u in UTILITIES:
            df = s.read_windows("state", u, size)
            out[u] = (int(df["count"].sum()), float(df["sum"].sum()))
        return out

    def read_topic(self, topic: str) -> list:
        import asyncio

        from aiokafka import AIOKafkaConsumer

        async def go() -> list:
            c = AIOKafkaConsumer(f"{self.name}-{topic}", bootstrap_servers=self.config.kafka,
                                 auto_offset_reset="earliest", enable_auto_commit=False)
            await c.start()
            got: list = []
            try:
                while batch := await c.getmany(timeout_ms=2000):
                    for records in batch.values():
                        got.extend(records)
            finally:
                await c.stop()
            return got

        return asyncio.run(go())


class Streaming(threading.Thread):
    """The simulator producing to Kafka at `pace` while a test runs, so the test's fault
    lands mid-stream: produced beforehand, a fast host did all the work between two of the
    test's looks. Starts at once; manifest() waits for it to end."""

    def __init__(self, case: LiveCase, *args: str, pace: str = "20x") -> None:
        super().__init__(daemon=True)
        self.case, self.args, self.pace, self.result = case, args, pace, {}
        self.start()

    def run(self) -> None:
        self.result = self.case.simulate(*self.args, "--pace", self.pace)

    def manifest(self) -> dict:
        self.join(timeout=120)
        assert self.result, "the simulator did not finish"
        return self.result


def brute_force_windows(csv_dir: Path, utility: str, size: int,
                        level: str = "meter") -> pd.DataFrame:
    """Independent reference: pure-Python window values (sum, count, min, max) per meter
    or per state from the simulator's CSV, each (meter, end_ts) once, nothing late."""
    seen, acc = set(), {}
    for line in (csv_dir / f"{utility}.csv").read_bytes().split(b"\n"):
        parts = line.split(b",")
        if len(parts) != 7:
            continue
        try:
            sid, end, value = parts[0].decode(), int(parts[6]), float(parts[5])
            int(parts[3])
            state = parts[4].decode()
        except (ValueError, UnicodeDecodeError):
            continue
        if not (value >= 0 and value < float("inf")) or (sid, end) in seen:
            continue
        seen.add((sid, end))
        key = (sid if level == "meter" else state, end // size * size)
        s, c, lo, hi = acc.get(key, (0.0, 0, value, value))
        acc[key] = (s + value, c + 1, min(lo, value), max(hi, value))
    return pd.DataFrame([(*k, *v) for k, v in acc.items()],
                        columns=["key", "window_start", "sum", "count", "min", "max"])


def brute_force_meter_windows(csv_dir: Path, utility: str, size: int) -> pd.DataFrame:
    return brute_force_windows(csv_dir, utility, size, "meter")


def assert_windows_exact(store: RedisWindowStore, csv_dir: Path, utilities, sizes=(60, 3600),
                         meters: int = 300, seed: int = 0) -> int:
    """Every state window, and every window of a sample of meters, equal the brute force
    (sum to 1e-9, count, min, max exactly); returns how many windows were compared."""
    import numpy as np

    compared = 0
    for u in utilities:
        for size in sizes:
            want = brute_force_windows(csv_dir, u, size, "state")
            compared += _compare(store.read_windows("state", u, size), want, f"{u} state {size}")
            ref = brute_force_windows(csv_dir, u, size, "meter")
            keys = sorted(ref["key"].unique())
            pick = np.random.default_rng(seed).permutation(len(keys))[:meters]
            for k in (keys[i] for i in pick):
                compared += _compare(store.read_windows("meter", u, size, key=k),
                                     ref[ref["key"] == k], f"{u} meter {k} {size}")
    return compared


def _compare(got: pd.DataFrame, want: pd.DataFrame, what: str) -> int:
    m = want.merge(got, on=["key", "window_start"], how="outer", suffixes=("_w", "_g"),
                   indicator=True)
    bad = m[(m["_merge"] != "both") | (m["count_w"] != m["count_g"]) |
            ((m["sum_w"] - m["sum_g"]).abs() > 1e-9) | (m["min_w"] != m["min_g"]) |
            (m["max_w"] != m["max_g"])]
    assert bad.empty, f"{what}: {len(bad)} of {len(m)} windows differ\n{bad.head(10)}"
    return len(m)
