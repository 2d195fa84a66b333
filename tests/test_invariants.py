"""Design invariants across runtimes: one topology, retention, final-window output, order."""

from __future__ import annotations

import random
import time
import uuid

import numpy as np
import pandas as pd
import pytest

from auth_kappa import Engine
from auth_kappa.config import Config
from auth_kappa.runtime.live import LiveRuntime
from auth_kappa.state.redis_store import RedisWindowStore
from auth_kappa.topology.decode import Message
from auth_kappa.topology.frames import read_ipc
from auth_kappa.topology.processor import Topology
from tests.support.epoch import epoch
from tests.support.live import LiveCase

UTILS = ("electricity", "gas", "water")


def _lines(folder, utility):
    return [ln for ln in (folder / f"{utility}.csv").read_bytes().split(b"\n") if ln]


@pytest.mark.stack
@pytest.mark.slow
def test_live_workers_and_embedded_engine_agree(stack, tmp_path, unique):
    """Invariant 1: the Faust path and the embedded engine give the same windows."""
    case = LiveCase(f"inv{unique}", tmp_path)
    case.create_topics()
    try:
        args = ["--meters", "120", "--duration", "12m", "--seed", "31",
                "--duplicate-fraction", "0.02", "--malformed-fraction", "0.01"]
        m = case.simulate(*args)
        case.simulate(*args, to="files")
        case.start_worker()
        case.wait_until({u: m["utilities"][u]["messages"] for u in UTILS})
        eng = Engine.embedded(window=["1m", "1h"], grace="30s")
        eng.ingest(tmp_path / "sim-files")
        eng.flush()
        live = Engine.connect(case.config)
        for u in UTILS:
            for size in ("1m", "1h"):
                a = eng.windows(level="state", utility=u, window=size)
                b = live.windows(level="state", utility=u, window=size)
                assert a[["key", "window_start", "count"]].equals(b[["key", "window_start",
                                                                      "count"]])
                np.testing.assert_allclose(a["sum"], b["sum"], rtol=1e-12)
                assert (a["min"] == b["min"]).all() and (a["max"] == b["max"]).all()
            sid = eng.windows(level="meter", utility=u)["key"].iloc[0]
            a = eng.windows(level="meter", utility=u, key=sid)
            b = live.windows(level="meter", utility=u, key=sid)
            assert a[["window_start", "count", "min", "max"]].equals(
                b[["window_start", "count", "min", "max"]])
        # the final meter windows published to the windows topic match the store
        frames = [read_ipc(r.value).to_pandas() for r in case.read_topic("windows")]
        published = pd.concat(frames, ignore_index=True).drop_duplicates()  # at least once
        cols = ["utility", "key", "window_start", "window_end"]
        assert not published.duplicated(cols).any(), "one window published with two values"
        highs = case.store().highs()
        for u in UTILS:
            clock = {h for k, h in highs.items() if k.startswith(f"{u}:")}
            assert len(clock) == 1          # every meter reports to the end: one clock
            want = pd.concat([eng.windows(level="meter", utility=u, window=w)
                              for w in ("1m", "1h")])
            # the topic carries epoch seconds (the workers' wire format)
            want = want.assign(window_start=epoch(want["window_start"]),
                               window_end=epoch(want["window_end"]))
            want = want[want["window_end"] + 30 <= clock.pop()]   # final by that clock
            got = published[published["utility"] == u]
            both = want.merge(got, on=cols, how="outer", indicator=True,
                              suffixes=("_w", "_g"))
            assert (both["_merge"] == "both").all(), both[both["_merge"] != "both"]
            assert (both["count_w"] == both["count_g"]).all()
            assert (both["min_w"] == both["min_g"]).all() and \
                (both["max_w"] == both["max_g"]).all()
            np.testing.assert_allclose(both["sum_g"], both["sum_w"], rtol=1e-12)
    finally:
        case.cleanup()


def test_out_of_order_within_grace_changes_nothing(tmp_path):
    from auth_kappa.cli.main import main

    assert main(["simulate", "--meters", "50", "--duration", "10m", "--seed", "2",
                 "--out", str(tmp_path), "--quiet"]) == 0
    ordered = Engine.embedded(window="1m", grace="30s")
    shuffled = Engine.embedded(window="1m", grace="30s")
    rng = random.Random(0)
    for u in UTILS:
        lines = _lines(tmp_path, u)
        ordered.ingest(lines, utility=u)
        # shuffle inside blocks of 10 s of event time: out of order, but within grace
        blocks: dict[int, list[bytes]] = {}
        for ln in lines:
            blocks.setdefault(int(ln.rsplit(b",", 1)[1]) // 10, []).append(ln)
        mixed = []
        for key in sorted(blocks):
            rng.shuffle(blocks[key])
            mixed += blocks[key]
        for i in range(0, len(mixed), 700):  # many small batches: the watermark moves often
            shuffled.ingest(mixed[i:i + 700], utility=u)
    for eng in (ordered, shuffled):
        eng.flush()
    assert shuffled.stats.late == 0
    for u in UTILS:
        a, b = (e.windows(level="meter", utility=u) for e in (ordered, shuffled))
        assert a[["key", "window_start", "count"]].equals(b[["key", "window_start", "count"]])
        np.testing.assert_allclose(a["sum"], b["sum"], rtol=1e-12)


def test_embedded_retention_is_event_time(tmp_path):
    from auth_kappa.cli.main import main

    assert main(["simulate", "--meters", "5", "--duration", "3h", "--seed", "3",
                 "--out", str(tmp_path), "--quiet"]) == 0
    eng = Engine.embedded(window="1m", retention="1h", meter_retention="20m")
    eng.ingest(tmp_path / "electricity.csv")
    wm = eng.watermark("electricity")
    meters = eng.windows(level="meter", utility="electricity")
    states = eng.windows(level="state", utility="electricity")
    minutes = pd.Timedelta(minutes=1)
    assert meters["window_start"].min() >= wm - 20 * minutes - 2 * minutes
    assert states["window_start"].min() >= wm - 60 * minutes - 2 * minutes
    assert states["window_start"].min() < wm - 30 * minutes  # states keep longer than meters


@pytest.mark.stack
def test_redis_retention_trims_by_event_time(stack, unique):
    config = Config.load(windows="1m", retention="1m=1h", meter_retention="1m=15m")
    specs = config.window_specs()
    store = RedisWindowStore.connect(stack.redis_url, f"ret{unique}", specs)
    rt = LiveRuntime(Topology(specs, grace=30), store, emit=lambda *a: None,
                     commit_interval=0)
    rt.assign([("gas", 0)])
    sid = str(uuid.UUID(int=12345, version=4))
    t0 = 1_772_409_600
    lines = [f"{sid},A,household,{t0 + 5 * i},WA,0.001,{t0 + 5 * i + 5}".encode()
             for i in range(12 * 90)]  # 90 minutes
    try:
        for i in range(0, len(lines), 60):
            rt.process("gas", [Message(v, 0, i + j) for j, v in enumerate(lines[i:i + 60])])
        rt.checkpoint()  # the hot path's checkpoints are asynchronous; this one waits
        high = t0 + 5 * len(lines)
        meter = store.read_windows("meter", "gas", 60, key=sid)
        assert len(meter) <= 16 and meter["window_start"].min() > high - 15 * 60 - 60
        state = store.read_windows("state", "gas", 60)
        assert 59 <= len(state) <= 61 and state["window_start"].min() > high - 3600 - 60
        ttl = store.client.ttl(store.meter_key(sid, "gas", 60))
        assert 0 < ttl <= 15 * 60 + 86400  # every key has a retention rule
        assert store.client.ttl(store.state_key("gas", 60)) > 0
    finally:
        store.drop_namespace()
        time.sleep(0)


@pytest.mark.stack
def test_a_worker_that_lost_its_partition_cannot_write(stack, unique):
    """Zombie fencing: after another worker claims the partition, the old one's checkpoint
    is refused and nothing of it reaches Redis."""
    from auth_kappa.state.redis_store import Fenced

    specs = Config.load(windows="1m").window_specs()
    store = RedisWindowStore.connect(stack.redis_url, f"fence{unique}", specs)
    sid = str(uuid.UUID(int=777, version=4))
    t0 = 1_772_409_600

    def runtime():
        rt = LiveRuntime(Topology(specs, grace=30), store, emit=lambda *a: None,
                         commit_interval=3600)
        rt.assign([("water", 0)])
        return rt

    try:
        old = runtime()
        old.process("water", [Message(f"{sid},A,household,{t0},OR,1.0,{t0 + 5}".encode(), 0, 0)])
        new = runtime()  # takes partition water:0 over while `old` still thinks it owns it
        new.process("water", [Message(f"{sid},A,household,{t0},OR,1.0,{t0 + 5}".encode(), 0, 0)])
        new.checkpoint()
        old.process("water", [Message(f"{sid},A,household,{t0 + 5},OR,2.0,{t0 + 10}".encode(),
                                      0, 1)])
        with pytest.raises(Fenced):
            old.checkpoint()
        assert store.offsets() == {"water:0": 1}
        assert store.read_windows("state", "water", 60)["count"].tolist() == [1]
    finally:
        store.drop_namespace()


@pytest.mark.stack
def test_final_window_messages_stay_under_the_broker_limit(stack, unique):
    """10k meters finish a minute together: the windows output is split, never one huge send."""
    from auth_kappa.config import parse_duration
    from auth_kappa.topology.frames import encode_frame
    from simulators import SimSpec, iter_reading_batches

    specs = Config.load(windows="1m").window_specs()
    store = RedisWindowStore.connect(stack.redis_url, f"big{unique}", specs)
    sent: list[tuple[str, bytes]] = []
    rt = LiveRuntime(Topology(specs, grace=0), store,
                     emit=lambda topic, key, value, headers: sent.append((topic, value)),
                     commit_interval=0)
    rt.assign([(u, 0) for u in UTILS])
    try:
        spec = SimSpec(meters=10_000, seed=4, duration=parse_duration("3m"))
        for i, (u, batch) in enumerate(iter_reading_batches(spec)):
            rt.process(u, [Message(encode_frame(batch), 0, i)])
        rt.checkpoint()
        windows = [v for t, v in sent if t == "windows"]
        rows = sum(read_ipc(v).num_rows for v in windows)
        assert rows >= 10_000 * 3 and len(windows) > 3
        assert max(len(v) for v in windows) < 1_000_000
    finally:
        store.drop_namespace()
