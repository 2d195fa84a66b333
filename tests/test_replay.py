"""Replay through the same topology: equals live, fixes late windows, rebuilds and switches
under a running stream, deterministic; against real Kafka, Redis and SeaweedFS."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest
import redis

from auth_kappa import Engine
from auth_kappa.archive.s3_store import S3Store
from auth_kappa.config import Config
from auth_kappa.state.redis_store import RedisWindowStore
from replay.correct import correct
from replay.plan import make_plan
from tests.support.archive import drop_bucket, make_bucket, wait_archived
from tests.support.live import ROOT, LiveCase, brute_force_meter_windows

pytestmark = [pytest.mark.stack, pytest.mark.slow]
UTILS = ("electricity", "gas", "water")
START = 1772409600  # 2026-03-02T00:00:00Z, the simulator's default start


def _archiving_case(name: str, tmp_path, **env: str) -> LiveCase:
    c = LiveCase(name, tmp_path, extra_env={
        "AUTH_ARCHIVE": "1", "AUTH_S3_BUCKET": name, "AUTH_ARCHIVE_ROLL_SECONDS": "1", **env})
    make_bucket(c.config)
    c.create_topics()
    return c


@pytest.fixture
def case(stack, tmp_path, unique):
    c = _archiving_case(f"rp{unique}", tmp_path)
    yield c
    c.cleanup()
    drop_bucket(c.config)


def _messages(m: dict) -> dict[str, int]:
    return {u: m["utilities"][u]["messages"] for u in UTILS}


def _correct(config, start: int, end: int):
    store = S3Store.from_config(config)
    plan = asyncio.run(make_plan(store, start, end, UTILS,
                                 {u: config.prefixed(u) for u in UTILS}))
    live = RedisWindowStore.connect(config.redis_url, config.namespace, config.window_specs(),
                                    group=config.group, pointer=config.pointer)
    return correct(config, store, plan, live)


def test_replay_equals_live_when_nothing_was_late(case):
    m = case.simulate("--meters", "80", "--duration", "6m", "--seed", "61",
                      "--duplicate-fraction", "0.02", "--malformed-fraction", "0.005")
    case.start_worker()
    case.wait_until(_messages(m))
    wait_archived(case.config, log=case.log_tail)
    report = _correct(case.config, START, START + 7 * 60)
    for (u, level, size), s in report.slots.items():
        assert s.changed == 0 and s.added == 0, (u, level, size, s)
    minute = [s for (u, level, size), s in report.slots.items() if size == 60]
    assert sum(s.unchanged for s in minute) > 6 * 80 * 3, "most windows must be compared"
    assert report.feed.late == 0 and report.feed.quarantined == 0
    # an archive behind the stream would make a correction remove readings: refused
    from dataclasses import replace

    from auth_kappa.errors import UserError

    c = case.config
    store = S3Store.from_config(c)
    plan = asyncio.run(make_plan(store, START, START + 7 * 60, UTILS,
                                 {u: c.prefixed(u) for u in UTILS}))
    name, prog = next(iter(plan.progress.items()))
    plan.progress[name] = replace(prog, next_offset=prog.next_offset - 1)
    live = RedisWindowStore.connect(c.redis_url, c.namespace, c.window_specs(), group=c.group)
    with pytest.raises(UserError, match="archive is behind the stream"):
        correct(c, store, plan, live)


def test_correction_fixes_windows_that_late_readings_missed(case):
    m = case.simulate("--meters", "80", "--duration", "8m", "--seed", "62",
                      "--late-fraction", "0.03", "--late-delay", "3m",
                      "--duplicate-fraction", "0.01")
    case.extra_env["AUTH_BATCH_SIZE"] = "200"   # small fetches: the watermark moves between
    case.start_worker()                          # them, so delayed readings arrive late
    case.wait_until(_messages(m))
    wait_archived(case.config, log=case.log_tail)
    before = case.state_totals()
    valid = {u: m["utilities"][u]["valid_readings"] for u in UTILS}
    assert all(before[u][0] < valid[u] for u in UTILS), "late readings must be missing first"

    def cli() -> dict:
        run = subprocess.run([sys.executable, "-m", "auth_kappa.cli.main", "replay", "correct",
                              "--from", "2026-03-02T00:00:00Z", "--to", "2026-03-02T00:09:00Z",
                              "--json", "--quiet"], env=case.env, cwd=ROOT,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        return json.loads(run.stdout[run.stdout.index("{"):])
    first = cli()
    assert first["changed"] > 0
    after = case.state_totals()
    for u in UTILS:   # the simulator's ground truth, exactly
        assert after[u][0] == valid[u], u
        assert after[u][1] == pytest.approx(float(m["utilities"][u]["consumption_sum"]),
                                            rel=1e-9)
    second = cli()
    assert second["changed"] == 0 and second["added"] == 0, "a second run changes nothing"
    assert case.state_totals() == after


def _totals(eng: Engine) -> dict[str, int]:
    return {u: int(eng.windows(level="state", utility=u, window="1m")["count"].sum())
            for u in UTILS}


def _committed(config, namespace: str) -> int:
    store = RedisWindowStore.connect(config.redis_url, namespace, config.window_specs(),
                                     group=config.group)
    return sum(store.offsets().values())


def _meter_windows_match(store: RedisWindowStore, files: list, size: int) -> list[str]:
    """Every meter window of every meter against the brute force over the simulator's
    files (both runs): the differences, as text."""
    bad = []
    for u in UTILS:
        ref = pd.concat([brute_force_meter_windows(f, u, size) for f in files])
        ref = ref.groupby(["key", "window_start"], as_index=False)[["sum", "count"]].sum()
        for sid, want in ref.groupby("key"):
            got = store.read_windows("meter", u, size, key=sid)
            want = want.sort_values("window_start")
            if got["window_start"].tolist() != want["window_start"].tolist() or \
                    got["count"].tolist() != want["count"].tolist() or \
                    not np.allclose(got["sum"], want["sum"], rtol=1e-9, atol=1e-12):
                bad.append(f"{u} {sid} {size}s: counts {got['count'].tolist()} at "
                           f"{got['window_start'].tolist()}, want {want['count'].tolist()} "
                           f"at {want['window_start'].tolist()}")
    return bad


def _published_windows_match(case: LiveCase, files: list) -> list[str]:
    """Every final meter window on the `windows` topic (each copy: it is at least once)
    against the brute force: the differences, as text."""
    from auth_kappa.topology.frames import read_ipc

    refs = {}
    for u in UTILS:
        for size in (60, 3600):
            ref = pd.concat([brute_force_meter_windows(f, u, size) for f in files])
            ref = ref.groupby(["key", "window_start"])[["sum", "count"]].sum()
            refs[(u, size)] = {k: (s, int(c)) for k, s, c in
                               zip(ref.index, ref["sum"], ref["count"], strict=True)}
    bad = []
    for rec in case.read_topic("windows"):
        size = int(dict(rec.headers)["size"])
        for row in read_ipc(rec.value).to_pylist():
            want = refs[(row["utility"], size)].get((row["key"], row["window_start"]))
            if want is None or row["count"] != want[1] or \
                    abs(row["sum"] - want[0]) > 1e-9 * max(1.0, abs(want[0])):
                bad.append(f"{row['utility']} {row['key']} {size}s@{row['window_start']}: "
                           f"published count {row['count']}, truth {want}")
    return bad


def test_rebuild_and_switch_while_the_stream_continues(stack, tmp_path, unique):
    """Two workers; a rebuild and switch while the stream runs; then every meter window of
    every meter equals the brute force (issue 9, defect 4: a rebuild that indexed every
    meter under partition 0 made that partition's owner publish stale copies over the
    real owner's windows)."""
    name = f"rb{unique}"
    pointer = f"auth:{name}:pointer"
    case = _archiving_case(name, tmp_path, AUTH_NAMESPACE="", AUTH_POINTER=pointer)
    r = redis.Redis.from_url(case.config.redis_url)
    v1, v2 = f"{name}-v1", f"{name}-v2"
    r.set(pointer, v1)
    stop = threading.Event()
    seen: list[tuple[float, dict[str, int]]] = []

    def read() -> None:
        eng = Engine.connect(case.config)   # one long-lived reader: it follows the pointer
        while not stop.is_set():
            seen.append((time.monotonic(), _totals(eng)))
            time.sleep(0.05)
    try:
        args = ["--meters", "100", "--seed", "63", "--duplicate-fraction", "0.01"]
        m1 = case.simulate(*args, "--duration", "4m")
        runs = [["--duration", "4m"], ["--duration", "4m", "--start", "2026-03-02T00:04:00Z"],
                ["--duration", "2m", "--start", "2026-03-02T00:08:00Z"]]
        files = [tmp_path / f"files-{i}" for i in range(len(runs))]
        for out, run_args in zip(files, runs, strict=True):
            sim = subprocess.run([sys.executable, "-m", "auth_kappa.cli.main", "simulate",
                                  "--to", "files", "--out", str(out), "--quiet", *args,
                                  *run_args],
                                 env=case.env, cwd=ROOT, capture_output=True, text=True,
                                 timeout=300)
            assert sim.returncode == 0, sim.stderr
        case.start_worker()
        case.start_worker()
        n1 = sum(_messages(m1).values())
        deadline = time.monotonic() + 120
        while _committed(case.config, v1) < n1:
            assert time.monotonic() < deadline, case.log_tail()
            time.sleep(0.3)
        wait_archived(case.config, log=case.log_tail)
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        out2 = tmp_path / "sim-2"
        stream = subprocess.Popen(  # the live stream goes on during the rebuild
            [sys.executable, "-m", "auth_kappa.cli.main", "simulate", "--to", "kafka",
             "--out", str(out2), "--quiet", "--topic-prefix", f"{name}-", *args,
             "--duration", "4m", "--start", "2026-03-02T00:04:00Z", "--pace", "20x"],
            env=case.env, cwd=ROOT)
        time.sleep(3)
        run = subprocess.run([sys.executable, "-m", "auth_kappa.cli.main", "replay", "rebuild",
                              "--from", "2026-03-02T00:00:00Z", "--quiet"], env=case.env,
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, "\n".join(
            ln for ln in run.stderr.splitlines() if "rebuild" in ln or "auth-kappa" in ln)
        assert stream.wait(120) == 0
        # and on after the switch (if it outlasted the second run): readings for the
        # windows open at the switch reach both workers, whose open windows the
        # assignment in the new namespace reloaded
        out3 = tmp_path / "sim-3"
        more = subprocess.run(
            [sys.executable, "-m", "auth_kappa.cli.main", "simulate", "--to", "kafka",
             "--out", str(out3), "--quiet", "--topic-prefix", f"{name}-", *args, *runs[2],
             "--pace", "20x"], env=case.env, cwd=ROOT, capture_output=True, text=True,
            timeout=300)
        assert more.returncode == 0, more.stderr
        m2 = json.loads((out2 / "manifest.json").read_text())
        m3 = json.loads((out3 / "manifest.json").read_text())
        total = n1 + sum(_messages(m2).values()) + sum(_messages(m3).values())
        deadline = time.monotonic() + 120
        while _committed(case.config, v2) < total:
            assert time.monotonic() < deadline, case.log_tail()
            time.sleep(0.3)
        time.sleep(1.5)
        stop.set()
        reader.join(10)
        assert r.get(pointer).decode() == v2
        assert not list(r.scan_iter(match=f"auth:{v1}:*", count=1000)), "old namespace left"
        assert "namespace pointer moved" in "".join(case.logs())
        truth = {u: sum(m["utilities"][u]["valid_readings"] for m in (m1, m2, m3))
                 for u in UTILS}
        assert _totals(Engine.connect(case.config)) == truth
        switch = [i for i, (_, t) in enumerate(seen) if t]  # non-empty reads
        assert len(seen) > 20 and switch, "the reader must have watched the switch"
        for u in UTILS:
            series = [t[u] for _, t in seen]
            assert max(series) <= truth[u], f"{u}: double count (saw {max(series)})"
            drops = [(a, b) for a, b in zip(series, series[1:], strict=False) if b < a]
            assert not drops, f"{u}: a reader saw totals drop (a gap): {drops[:3]}"
        v2_store = RedisWindowStore(r, v2, case.config.window_specs(), group=case.config.group)
        for size in (60, 3600):
            bad = _meter_windows_match(v2_store, files, size)
            assert not bad, f"{len(bad)} meters differ, e.g.\n" + "\n".join(bad[:5])
        bad = _published_windows_match(case, files)
        assert not bad, f"{len(bad)} published windows differ, e.g.\n" + "\n".join(bad[:5])
    finally:
        stop.set()
        case.stop_all()
        for ns in (v1, v2):
            RedisWindowStore(r, ns, case.config.window_specs()).drop_namespace()
        r.delete(pointer)
        drop_bucket(case.config)


def test_two_rebuilds_from_a_local_archive_are_identical(stack, tmp_path, unique):
    """Deterministic: same archive + same code = the same bytes in Redis."""
    from auth_kappa.cli.main import main

    folder = tmp_path / "archive"
    assert main(["simulate", "--meters", "60", "--duration", "20m", "--seed", "64",
                 "--late-fraction", "0.02", "--duplicate-fraction", "0.02",
                 "--malformed-fraction", "0.005", "--to", "archive", str(folder),
                 "--out", str(tmp_path / "sim"), "--quiet"]) == 0
    r = redis.Redis.from_url(stack.redis_url)
    dumps = []
    try:
        for i in (1, 2):
            pointer = f"auth:det{unique}{i}:pointer"
            r.set(pointer, f"det{unique}{i}-v1")
            env = {"AUTH_POINTER": pointer, "AUTH_GROUP": f"det{unique}{i}"}
            run = subprocess.run([sys.executable, "-m", "auth_kappa.cli.main", "replay",
                                  "rebuild", "--from", "2026-03-02T00:00:00Z", "--archive",
                                  str(folder), "--archive-only", "--quiet"],
                                 env={**__import__("os").environ, **env}, cwd=ROOT,
                                 capture_output=True, text=True, timeout=300)
            assert run.returncode == 0, run.stderr
            ns = f"det{unique}{i}-v2"
            assert r.get(pointer).decode() == ns
            prefix = f"auth:{ns}:"
            dump = {}
            for key in r.scan_iter(match=prefix + "*", count=1000):
                k = key.decode()[len(prefix):].replace(f"det{unique}{i}", "GROUP")
                if r.type(key) == b"hash" and not k.startswith("stats:"):  # wall-clock stamp
                    dump[k] = r.hgetall(key)
            dumps.append(dump)
        assert len(dumps[0]) > 60 * 3 and dumps[0] == dumps[1]
        m = json.loads((tmp_path / "sim" / "manifest.json").read_text())
        for u in UTILS:  # and it is right: every valid reading once, late ones in place
            counts = sum(int.from_bytes(v[8:16], "little", signed=True)
                         for v in dumps[0][f"s:{u}:60"].values())
            assert counts == m["utilities"][u]["valid_readings"]
    finally:
        for i in (1, 2):
            for ns in (f"det{unique}{i}-v1", f"det{unique}{i}-v2"):
                RedisWindowStore(r, ns, Config.load().window_specs()).drop_namespace()
            r.delete(f"auth:det{unique}{i}:pointer")


def test_simulated_history_in_s3_corrects_an_empty_namespace_to_the_truth(stack, tmp_path,
                                                                           unique):
    """`simulate --to s3` then `replay correct` from the bucket: every valid reading once."""
    import os

    name = f"hs{unique}"
    env = {**os.environ, "AUTH_S3_BUCKET": name, "AUTH_NAMESPACE": name, "AUTH_GROUP": name}
    config = Config.load(env=env)
    make_bucket(config)
    try:
        cmd = [sys.executable, "-m", "auth_kappa.cli.main"]
        sim = subprocess.run([*cmd, "simulate", "--to", "s3", "--meters", "30", "--duration",
                              "30m", "--seed", "65", "--late-fraction", "0.05",
                              "--duplicate-fraction", "0.05", "--malformed-fraction", "0.01",
                              "--out", str(tmp_path / "sim"), "--quiet"], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
        assert sim.returncode == 0, sim.stderr
        m = json.loads((tmp_path / "sim" / "manifest.json").read_text())
        run = subprocess.run([*cmd, "replay", "correct", "--from", "2026-03-02T00:00:00Z",
                              "--to", "2026-03-02T01:00:00Z", "--json", "--quiet"], env=env,
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        report = json.loads(run.stdout[run.stdout.index("{"):])
        assert report["changed"] == 0 and report["added"] > 0
        assert "no progress objects" in " ".join(report["notes"])
        eng = Engine.connect(config)
        for u in UTILS:
            got = eng.windows(level="state", utility=u, window="1m")
            assert int(got["count"].sum()) == m["utilities"][u]["valid_readings"], u
            hourly = eng.windows(level="state", utility=u, window="1h")
            assert int(hourly["count"].sum()) == m["utilities"][u]["valid_readings"], u
    finally:
        RedisWindowStore.connect(config.redis_url, name, config.window_specs()).drop_namespace()
        drop_bucket(config)
