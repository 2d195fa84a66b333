"""The dashboard's alerts (issue 12): an in-process LiveRuntime finds gaps, leaks and spikes
and checkpoints them into Redis (one server and a cluster); the dashboard, reading as its
read-only user, answers a household's alerts and the fleet's counts by kind and state.
Each answer equals what Engine.connect().alerts() reads from the store on its own path,
counted against the registry this test loaded, and the sentences say the alert's local
times and the page's units."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import urllib.request
from collections import Counter
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from auth_kappa import Engine
from auth_kappa.config import Config
from auth_kappa.runtime.live import LiveRuntime
from auth_kappa.state.clients import sync_client
from auth_kappa.state.redis_store import RedisWindowStore
from auth_kappa.timezones import ZONES
from auth_kappa.topology.processor import Topology
from dashboards import registry
from tests.support.browser import start_server
from tests.support.dashboard import SECRET_ENV
from tests.test_insights import _daily, _fleet
from tests.test_insights_live import _messages

pytestmark = pytest.mark.stack
TOKEN = "alerts-operator-token-0123456789"
PARTS = 2
STATES = ("CA", "NY", "TX", "HI")


@pytest.fixture(params=["redis", "cluster"])
def fed(request, stack, unique, tmp_path):
    """Water (gaps, leaks) and gas (spikes) through a LiveRuntime into Redis, left
    mid-stream so some alerts stay open; the registry loaded with several states and one
    alerting meter left out. Dropped after."""
    env = {"AUTH_REDIS_URL": stack.redis_url, "AUTH_NAMESPACE": f"da{unique}",
           "AUTH_GROUP": f"da{unique}", "AUTH_WINDOWS": "1m,1h"}
    if request.param == "cluster":
        cluster = request.getfixturevalue("redis_cluster")
        env.update({**cluster.env, "AUTH_STACK_DIR": str(cluster.home)})
    config = Config.load(env=env)
    store = RedisWindowStore.from_config(config)
    water = _fleet(meters=6, hours=27, seed=7, utility="water")
    quiet = water["service_id"] == water["service_id"].iloc[0]   # silent for the last 20 min
    water = water[~(quiet & (water["end_ts"] > water["end_ts"].max() - 1200))]
    gas, _ = _daily(meters=3, days=5, seed=6)
    gas = gas[gas["end_ts"] % 60 == 5]   # a reading a minute: the spike stays, 12x fewer
    rt = LiveRuntime(Topology.from_config(config, live=False), store,
                     emit=lambda *a: None, commit_interval=3600)
    rt.place({"water": PARTS, "gas": PARTS})
    rt.assign([(u, p) for u in ("water", "gas") for p in range(PARTS)])
    for utility, df in (("water", water), ("gas", gas)):
        for msgs in _messages(df).values():
            for lo in range(0, len(msgs), 20000):
                rt.process(utility, msgs[lo:lo + 20000])
        rt.checkpoint()
    rt.tick()
    rt.checkpoint()
    sids = sorted({*water["service_id"], *gas["service_id"]})
    rows = [{"service_id": s, "user_name": f"Owner {i}", "type": "household",
             "state": STATES[i % len(STATES)], "registered_ts": "0"}
            for i, s in enumerate(sids)][1:]          # the first meter is unregistered
    prefix = f"auth:reg{unique}:"
    client = sync_client(config.redis_url, config.redis_cluster)
    registry.load(client, rows, prefix=prefix)
    yield {"config": config, "env": {**env, "AUTH_REGISTRY_PREFIX": prefix},
           "registry": {r["service_id"]: r for r in rows}, "unregistered": sids[0],
           "clock": {"water": int(water["end_ts"].max()), "gas": int(gas["end_ts"].max())}}
    store.drop_namespace()
    for key in [registry.index_key(prefix), *(registry.meter_key(s, prefix) for s in sids)]:
        client.unlink(key)


def _get(server, path: str) -> dict:
    status, body, _ = server.get(path, TOKEN)
    assert status == 200, body
    return json.loads(body)


def _row(a: dict) -> tuple:
    return (a["kind"], a["utility"], a["service_id"], a["start"], a["end"],
            pytest.approx(a["value"], rel=1e-12), a["detail"])


def test_alert_answers_equal_the_store(fed, tmp_path):
    frame = Engine.connect(fed["config"]).alerts()   # the store's own reader, not the API's
    want = [{"kind": r.kind, "utility": r.utility, "service_id": r.service_id,
             "start": int(r.start.timestamp()),
             "end": None if pd.isna(r.end) else int(r.end.timestamp()),
             "value": r.value, "detail": r.detail} for r in frame.itertuples()]
    kinds = Counter((a["kind"], a["end"] is None) for a in want)
    assert kinds[("gap", True)] and kinds[("gap", False)] and kinds[("leak", True)], kinds
    assert kinds[("spike", False)], kinds
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_DASHBOARD_",
                                                                      "AUTH_REDIS"))}
    server = start_server([], {**base, **fed["env"], **SECRET_ENV}, tmp_path / "dash.log",
                          TOKEN)   # no AUTH_DASHBOARD_REDIS_URL: the read-only ACL user
    try:
        reg = fed["registry"]
        # the fleet: counts by kind and the registry's state, the open ones listed
        fleet = _get(server, "/api/fleet/alerts")
        counted = Counter()
        for a in want:
            state = reg[a["service_id"]]["state"] if a["service_id"] in reg else None
            counted[(a["kind"], state, "open" if a["end"] is None else "closed")] += 1
        got = Counter()
        for r in fleet["counts"]:
            for which in ("open", "closed"):
                if r[which]:
                    got[(r["kind"], r["state"], which)] = r[which]
        assert got == counted
        assert {None, *STATES} >= {s for _, s, _ in counted} and None in {
            s for _, s, _ in counted}, "no alert of the unregistered meter"
        opened = [a for a in want if a["end"] is None]
        assert fleet["open_total"] == len(opened)
        assert sorted(_row(a) for a in fleet["open"]) == sorted(_row(a) for a in opened)
        for a in fleet["open"]:
            owner = reg.get(a["service_id"], {})
            assert (a["user_name"], a["state"]) == (owner.get("user_name"), owner.get("state"))
            assert a["link"] == f"/household/{a['service_id']}/link"
        # the household: its alerts per utility, each in words
        for sid in sorted({a["service_id"] for a in want}):
            page = _get(server, f"/api/meters/{sid}/alerts")
            zone = ZONES[reg[sid]["state"]] if sid in reg else "UTC"
            assert page["time_zone"] == zone
            for u, lists in page["utilities"].items():
                mine = [a for a in want if a["service_id"] == sid and a["utility"] == u]
                assert sorted(_row(a) for a in lists["open"]) == sorted(
                    _row(a) for a in mine if a["end"] is None)
                closed = sorted((a for a in mine if a["end"] is not None),
                                key=lambda a: -a["end"])[:page["recent"]]
                assert sorted(_row(a) for a in lists["closed"]) == sorted(_row(a) for a in closed)
                for a in lists["open"] + lists["closed"]:
                    _check_words(a, zone, fed["clock"][u])
        status, body, _ = server.get(fleet["open"][0]["link"], TOKEN)   # signs, redirects
        assert status == 200 and b'id="alerts-open"' in body
        assert b'id="alert-counts"' in server.get("/fleet", TOKEN)[1]
        nobody = "0b4e28ba-2fa1-41d2-883f-0016d3cca427"   # unknown: no alerts, not an error
        empty = _get(server, f"/api/meters/{nobody}/alerts")
        assert empty["open"] == 0 and not any(v["open"] or v["closed"]
                                              for v in empty["utilities"].values())
        # the household's live stream carries its alerts too
        sid = fleet["open"][0]["service_id"]
        assert _first_event(server, f"/api/meters/{sid}/stream", "alerts") == \
            _get(server, f"/api/meters/{sid}/alerts")
        # a household's signed link opens its alerts, not another meter's
        assert server.get(f"/api/meters/{fed['unregistered']}/alerts")[0] == 401
    finally:
        server.stop()


def _first_event(server, path: str, name: str) -> dict:
    req = urllib.request.Request(server.base + path,
                                 headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        event = None
        for raw in r:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == name:
                return json.loads(line[6:])
    raise AssertionError(f"no {name} event")


def _hm(t: int, zone: str) -> str:
    return dt.datetime.fromtimestamp(t, ZoneInfo(zone)).strftime("%H:%M")


def _check_words(a: dict, zone: str, clock: int) -> None:
    """The sentence against the alert: local clock times, minutes and hours counted here."""
    text, start = a["text"], a["start"]
    assert _hm(start, zone) in text, text
    if a["kind"] == "gap" and a["end"] is None:
        assert text.startswith(f"No {a['utility']} reading since "), text
        assert text.endswith(f"(about {round((clock - start) / 60)} minutes)"), text
    elif a["kind"] == "gap":
        assert f"{int(a['value'])} readings missed" in text and _hm(a["end"], zone) in text
    elif a["kind"] == "leak" and a["end"] is None:
        flow = float(re.search(r"at least ([0-9.]+) gallons", text).group(1))
        assert a["value"] - 0.1 < flow <= a["value"], text
        assert f"every hour for {(clock - start) // 3600} hours (since " in text, text
        assert text.endswith("): possible leak"), text
    elif a["kind"] == "spike":
        shown = float(re.search(r"was ([0-9.,]+) cubic feet", text).group(1).replace(",", ""))
        assert shown == pytest.approx(a["value"] * 100, rel=5e-3), text   # 1 ccf = 100 ft3
        usual = float(re.search(r"usual ([0-9.]+)", a["detail"]).group(1))
        times = float(re.search(r"about ([0-9.]+) times", text).group(1))
        assert abs(times - a["value"] / usual) <= 0.5 + 1e-9, text
        assert _hm(start + 3600, zone) in text and math.isfinite(times)
