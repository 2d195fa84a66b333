"""Days, bills and similar homes from the live runtime over the real Redis (one server and
a cluster), with restarts and a crash mid-stream: what Engine.connect reads equals the
brute force over the readings (local days, DST included) and the embedded engine."""

from __future__ import annotations

import json
import os
import uuid

import numpy as np
import pandas as pd
import pytest

from auth_kappa import Engine
from auth_kappa.config import Config
from auth_kappa.insights.tariff import Tariff
from auth_kappa.runtime.live import LiveRuntime
from auth_kappa.state.redis_store import RedisWindowStore
from auth_kappa.topology.decode import Message
from auth_kappa.topology.partitioner import partitions_of
from auth_kappa.topology.processor import Topology
from tests.support.browser import start_server
from tests.support.dashboard import SECRET_ENV
from tests.test_bills import STATES, T0, _local
from tests.test_insights_live import case_config  # noqa: F401,F811 - one Redis and a cluster

pytestmark = pytest.mark.stack
PARTS = 2
TOKEN = "bills-operator-token-0123456789"


def _fleet(days: float = 2.5) -> pd.DataFrame:
    """Four homes per state, a reading a minute, evening use higher; over DST's start."""
    rng = np.random.default_rng(21)
    ends = T0 + 60 + 60 * np.arange(int(days * 1440))
    frames = []
    for i, state in enumerate(list(STATES) * 4):
        use = rng.uniform(0, 0.05 * (1 + i % 3), len(ends)) * \
            (1 + (ends // 3600 % 24 == 2) * 4)
        frames.append(pd.DataFrame({"service_id": str(uuid.UUID(int=70_000 + i, version=4)),
                                    "state": state, "end_ts": ends,
                                    "consumption": use.round(6)}))
    df = pd.concat(frames, ignore_index=True).sort_values("end_ts", kind="stable")
    df["type"], df["start_ts"] = "household", df["end_ts"] - 60
    return df.reset_index(drop=True)


def _messages(df: pd.DataFrame) -> dict[int, list[Message]]:
    part = partitions_of([s.encode() for s in df["service_id"]], PARTS)
    lines = (df["service_id"] + ",x,household," + df["start_ts"].astype(str) + "," +
             df["state"] + "," + df["consumption"].astype(str) + "," +
             df["end_ts"].astype(str)).str.encode("ascii")
    out: dict[int, list[Message]] = {p: [] for p in range(PARTS)}
    for p, line in zip(part.tolist(), lines.tolist(), strict=True):
        out[p].append(Message(line, p, len(out[p])))
    return out


def _run_live(config: Config, msgs: dict[int, list[Message]]) -> None:
    """Three runtimes in turn (restarts); the first two also crash with work unsaved.
    The last one sees the input end, so every window is final."""
    for stop in (0.3, 0.65, 1.0):
        rt = LiveRuntime(Topology.from_config(config, live=False),
                         RedisWindowStore.from_config(config), emit=lambda *a: None,
                         commit_interval=3600)
        rt.place({"electricity": PARTS})
        seek = rt.assign([("electricity", p) for p in msgs])
        for p, m in msgs.items():
            end = int(len(m) * stop)
            for lo in range(seek.get(("electricity", p), 0), end, 4000):
                rt.process("electricity", m[lo:min(lo + 4000, end)])
                rt.checkpoint()
            if stop < 1.0:   # processed, never checkpointed: the next runtime redoes it
                rt.process("electricity", m[end:end + 2500])
    for wm in rt.topology.watermarks.values():
        wm.end_of_input()
    rt.tick()
    rt.checkpoint()


def test_days_bills_and_similar_homes_survive_restarts_and_equal_the_brute_force(
        case_config, request, tmp_path, monkeypatch):  # noqa: F811 - the imported fixture
    # a quarter's turn is taken a few meters a step (as 1,024 of a large fleet are), so
    # quarters over and not yet taken meet restarts, crashes and the next quarter's windows
    monkeypatch.setattr("auth_kappa.insights.bills.TAKE_PER_STEP", 3)
    df = _fleet()
    _run_live(case_config, _messages(df))
    live = Engine.connect(case_config)
    loc = _local(df)
    hour, weekday = loc["hour"], loc["weekday"] < 5
    loc["period"] = np.where(weekday & (hour >= 16) & (hour < 21), "peak",
                             np.where(weekday & (hour >= 7) & (hour < 16), "mid-peak",
                                      "off-peak"))
    prices = {p.name: p.price for p in Tariff.load().periods["electricity"]}
    totals = loc.groupby(["state", "day", "service_id"])["consumption"].sum()
    ranked = 0
    for sid, g in loc.groupby("service_id"):
        got = live.days(sid)
        got = got[got["utility"] == "electricity"].set_index("day")
        quarters = g.groupby(["day", g["ws"] // 900])["consumption"].sum()
        want = g.groupby("day")["consumption"].sum()
        assert list(got.index) == list(want.index)
        np.testing.assert_allclose(got["total"], want, rtol=1e-9)
        np.testing.assert_allclose(got["peak_15min"], quarters.groupby(level=0).max(),
                                   rtol=1e-9)
        use = g[g["day"].str.startswith("2026-03")].groupby("period")["consumption"].sum()
        bill = live.bill(sid, "2026-03").set_index("period")
        np.testing.assert_allclose(bill.loc[use.index, "consumption"], use, rtol=1e-9)
        np.testing.assert_allclose(bill.loc[use.index, "cost"],
                                   [use[p] * prices[p] for p in use.index], rtol=1e-9)
        state = g["state"].iloc[0]
        for day in want.index[:-1]:          # the newest day never ended: not ranked
            group = totals.loc[(state, day)]
            homes = live.similar_homes(sid, day)
            assert len(homes) == 1, (sid, day)
            assert homes["percentile"].iloc[0] == pytest.approx(
                100.0 * (group <= group[sid]).sum() / len(group))
            assert homes["homes"].iloc[0] == len(group)
            ranked += 1
        assert live.similar_homes(sid, want.index[-1]).empty
    assert ranked >= 12 * 2
    _dashboard_equals_the_store(case_config, live, sorted(loc["service_id"].unique()),
                                request, tmp_path)


def _dashboard_equals_the_store(config: Config, live: Engine, sids: list[str], request,
                                tmp_path) -> None:
    """The household API's bill, days and similar homes, read as the dashboard's read-only
    user, equal what Engine.connect (checked above) reads."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_DASHBOARD_",
                                                                     "AUTH_REDIS"))}
    env.update({"AUTH_REDIS_URL": config.redis_url, "AUTH_NAMESPACE": config.namespace,
                "AUTH_GROUP": config.group, "AUTH_WINDOWS": "1m,1h", **SECRET_ENV})
    if config.redis_cluster:
        cluster = request.getfixturevalue("redis_cluster")
        env.update({**cluster.env, "AUTH_STACK_DIR": str(cluster.home)})
    server = start_server([], env, tmp_path / "dash.log", TOKEN)
    try:
        for sid in sids[:4]:
            status, body, _ = server.get(f"/api/meters/{sid}/bill?month=2026-03", TOKEN)
            assert status == 200, body
            got = json.loads(body)["utilities"]["electricity"]
            bill = live.bill(sid, "2026-03")
            assert [r["period"] for r in got["bill"]] == list(bill["period"])
            assert [r["cost"] for r in got["bill"]] == pytest.approx(list(bill["cost"]),
                                                                     rel=1e-12)
            assert got["cost"] == pytest.approx(bill["cost"].sum(), rel=1e-12)
            days = live.days(sid)
            assert [d["day"] for d in got["days"]] == list(days["day"])
            assert [d["peak_15min"] for d in got["days"]] == pytest.approx(
                list(days["peak_15min"]), rel=1e-12)
            assert got["measured"] == pytest.approx(days["total"].sum(), rel=1e-12)
            newest_whole = days["day"].iloc[-2]
            homes = live.similar_homes(sid, newest_whole)
            assert got["similar"]["day"] == newest_whole
            assert got["similar"]["percentile"] == pytest.approx(homes["percentile"].iloc[0])
        assert server.get(f"/api/meters/{sids[0]}/bill?month=2026-3", TOKEN)[0] == 400
        assert server.get(f"/api/meters/{sids[0]}/bill")[0] == 401
    finally:
        server.stop()
