"""Gaps and leaks from the live runtime over the real Redis (one server and a cluster),
with restarts mid-stream: the alerts Redis holds and the alerts topic's records equal the
brute force over the readings, as in the embedded engine."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pandas as pd
import pytest

from auth_kappa import Engine
from auth_kappa.config import Config
from auth_kappa.runtime.live import LiveRuntime
from auth_kappa.state.redis_store import RedisWindowStore
from auth_kappa.topology.decode import Message
from auth_kappa.topology.partitioner import partitions_of
from auth_kappa.topology.processor import Topology
from tests.test_insights import T0, _daily, _fleet, _gaps, _leaks, _spikes

pytestmark = pytest.mark.stack
PARTS = 2


@pytest.fixture(params=["redis", "cluster"])
def case_config(request, stack, unique) -> Config:
    env = {"AUTH_REDIS_URL": stack.redis_url, "AUTH_NAMESPACE": f"ins{unique}",
           "AUTH_GROUP": f"ins{unique}", "AUTH_WINDOWS": "1m,1h"}
    if request.param == "cluster":
        env.update(request.getfixturevalue("redis_cluster").env)
    c = Config.load(env=env)
    yield c
    RedisWindowStore.from_config(c).drop_namespace()


def _messages(df: pd.DataFrame) -> dict[int, list[Message]]:
    part = partitions_of([s.encode() for s in df["service_id"]], PARTS)
    lines = (df["service_id"] + ",x,household," + df["start_ts"].astype(str) + ",CA," +
             df["consumption"].astype(str) + "," + df["end_ts"].astype(str)).str.encode("ascii")
    out: dict[int, list[Message]] = {p: [] for p in range(PARTS)}
    for p, line in zip(part.tolist(), lines.tolist(), strict=True):
        out[p].append(Message(line, p, len(out[p])))
    return out


def _runtime(config: Config, sent: list, utility: str = "water") -> LiveRuntime:
    rt = LiveRuntime(Topology.from_config(config, live=False),
                     RedisWindowStore.from_config(config),
                     emit=lambda topic, key, value, headers:
                     sent.append(json.loads(value)) if topic == "alerts" else None,
                     commit_interval=3600)
    rt.place({utility: PARTS})
    return rt


def test_alerts_survive_restarts_and_equal_the_brute_force(case_config):
    config = case_config
    df = _fleet(meters=10, hours=28, seed=7, utility="water")
    msgs = _messages(df)
    sent: list = []
    pos = {p: 0 for p in msgs}
    for stop in (0.35, 0.7, 1.0):       # a new runtime (a restart) each time
        rt = _runtime(config, sent)
        seek = rt.assign([("water", p) for p in msgs])
        pos = {p: seek.get(("water", p), 0) for p in msgs}
        for lo in range(0, max(len(m) for m in msgs.values()), 2000):
            for p, m in msgs.items():
                end = int(len(m) * stop)
                if pos[p] < end and lo < end:
                    rt.process("water", m[pos[p]:min(lo + 2000, end)])
                    pos[p] = min(lo + 2000, end)
            rt.checkpoint()
        if stop < 1.0:   # a crash: processed, never checkpointed; the next runtime redoes it
            for p, m in msgs.items():
                rt.process("water", m[pos[p]:pos[p] + 3000])
    for wm in rt.topology.watermarks.values():   # the input is over: every window final
        wm.end_of_input()
    rt.tick()
    rt.checkpoint()
    want = {("gap", *g) for g in _gaps(df)} | {("leak", *g) for g in _leaks(df)}
    assert len(want) >= 8
    got = Engine.connect(config).alerts()
    found = {(r.kind, r.service_id, r.start.timestamp(),
              None if pd.isna(r.end) else r.end.timestamp()) for r in got.itertuples()}
    # a live gap opens once its partition's windows are final gap_after past the last
    # reading (the embedded engine's flush() counts to the last reading itself)
    high = df["end_ts"].max()
    assert found <= want, found - want
    assert all(k == "gap" and end is None and high - start < 300 + 30 + 60
               for k, _, start, end in want - found), want - found
    # the topic: every alert's last event is its current state (at least once)
    last = {}
    for a in sent:
        last[(a["kind"], a["service_id"], a["start"])] = a["end"]
    assert {(k, s, float(st), None if e is None else float(e)) for (k, s, st), e in
            last.items()} == found
    assert (np.array([a["value"] for a in sent]) >= 0).all()


def test_spikes_after_a_restart_use_the_history_redis_holds(case_config):
    """The spikes' baseline is the hourly windows Redis keeps: a runtime that starts
    mid-stream rebuilds it and finds the same spikes as one that never stopped."""
    config = case_config
    df, injected = _daily(meters=4, days=5, seed=6)
    msgs = _messages(df)
    sent: list = []
    pos = {p: 0 for p in msgs}
    for stop in (0.8, 1.0):
        rt = _runtime(config, sent, "gas")
        seek = rt.assign([("gas", p) for p in msgs])
        pos = {p: seek.get(("gas", p), 0) for p in msgs}
        for p, m in msgs.items():
            for lo in range(pos[p], int(len(m) * stop), 5000):
                rt.process("gas", m[lo:min(lo + 5000, int(len(m) * stop))])
        rt.checkpoint()
    for wm in rt.topology.watermarks.values():
        wm.end_of_input()
    rt.tick()
    rt.checkpoint()
    want = _spikes(df)
    assert {(s, float(h)) for s, h in injected} <= want
    got = Engine.connect(config).alerts(kind="spike")
    assert {(r.service_id, r.start.timestamp()) for r in got.itertuples()} == want


def test_a_meter_silent_across_a_restart_still_opens_its_gap_and_keeps_its_day(case_config):
    """A meter's last reading is not written each checkpoint: a new owner reads it back
    from the finest windows Redis holds. A meter that stops just before a restart and
    stays silent: the new runtime opens its gap at its last reading, and its open day
    (written each checkpoint) keeps every minute it sent."""
    config = case_config
    ends = T0 + 5 + 5 * np.arange(90 * 12)            # 90 minutes at 5 s
    quiet_from = T0 + 30 * 60 + 7 * 60                  # 7 minutes into a quarter
    ids = [str(uuid.UUID(int=31_000 + i, version=4)) for i in range(8)]
    home = partitions_of([s.encode() for s in ids], PARTS)
    talk, quiet = [s for s, p in zip(ids, home.tolist(), strict=True) if p == home[0]][:2]
    df = pd.concat([pd.DataFrame({"service_id": talk, "end_ts": ends}),
                    pd.DataFrame({"service_id": quiet, "end_ts": ends[ends < quiet_from]})])
    df = df.sort_values("end_ts", kind="stable").reset_index(drop=True)
    df["consumption"], df["start_ts"] = 0.125, df["end_ts"] - 5
    msgs = _messages(df)
    restart_at = quiet_from + 3 * 60                    # its windows final, checkpointed
    sent: list = []
    rt = _runtime(config, sent)
    rt.assign([("water", p) for p in msgs])
    for minute in range(T0, restart_at, 60):      # a checkpoint a minute, as live
        for m in msgs.values():
            rt.process("water", [x for x in m if minute <= int(x.value.rsplit(b",", 1)[1])
                                 < min(minute + 60, restart_at)])
        rt.checkpoint()
    rt = _runtime(config, sent)                         # a new owner
    seek = rt.assign([("water", p) for p in msgs])
    for p, m in msgs.items():
        rt.process("water", m[seek.get(("water", p), 0):])
    rt.checkpoint()
    last = float(df.loc[df["service_id"] == quiet, "end_ts"].max())
    gaps = Engine.connect(config).alerts(kind="gap", service_id=quiet)
    assert [(r.start.timestamp(), r.end) for r in gaps.itertuples()] == [(last, pd.NaT)]
    day = Engine.connect(config).days(quiet)
    got = day.loc[day["utility"] == "water", "total"].sum()
    assert got == pytest.approx(0.125 * (df["service_id"] == quiet).sum(), rel=1e-12)
