"""CSV downloads, ISO 8601 times and typed fields of the dashboard API, over real HTTP.

One `auth-kappa dashboard --embedded` process serves a simulation that straddles midnight in
New York (04:50-05:10 UTC): a meter's "today" must start at its own local midnight, not at
the UTC one. CSV rows are checked against the JSON API, the JSON against the simulator's
own files (registry, readings)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
import urllib.parse
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from auth_kappa.topology.schema import STATES, UTILITIES
from dashboards.auth import Access
from tests.support.browser import ROOT, start_server
from tests.support.dashboard import SIM, TOKEN
from tests.test_dashboard_api import reference

START = "2026-03-02T04:50:00Z"     # midnight EST is 05:00 UTC; midnight CST is 06:00 UTC
SECRET_ENV = {"AUTH_DASHBOARD_SECRET": "export-test-household-link-secret-0123456789"}


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("export-sim")
    run = subprocess.run([sys.executable, "-m", "auth_kappa.cli.main", "simulate", *SIM,
                          "--start", START, "--out", str(out), "--quiet"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr
    return {"dir": out, "registry": pd.read_parquet(out / "registry.parquet")}


@pytest.fixture(scope="module")
def server(sim, tmp_path_factory):
    log = tmp_path_factory.mktemp("export-log") / "dashboard.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTH_DASHBOARD_")}
    s = start_server(["--embedded", str(sim["dir"])], env | SECRET_ENV, log, TOKEN)
    yield s
    s.stop()


def _sig(sid: str) -> str:
    return Access.from_env(env=SECRET_ENV, token=TOKEN).sign(sid)


def _json(server, path: str, token: str | None = TOKEN) -> dict:
    status, body, _ = server.get(path, token)
    assert status == 200, (path, status, body[:300])
    return json.loads(body)


def _csv(server, path: str, token: str | None = TOKEN) -> list[dict[str, str]]:
    status, body, headers = server.get(path, token)
    assert status == 200, (path, status, body[:300])
    assert headers["Content-Type"].startswith("text/csv")
    disposition = headers["Content-Disposition"]
    assert disposition.startswith("attachment; filename=") and disposition.endswith('.csv"')
    return list(csv.DictReader(io.StringIO(body.decode())))


def _epoch(iso: str) -> int:
    return int(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


def _opt(text: str) -> float | None:
    return None if text == "" else float(text)


def test_a_meters_windows_as_csv_equal_its_json(server, sim):
    """The household's own link downloads the same windows, with UTC and local times."""
    for sid in sim["registry"]["service_id"].iloc[:4]:
        for u in UTILITIES:
            path = f"/api/meters/{sid}/windows?utility={u}&window=1m&sig={_sig(sid)}"
            want = _json(server, path, token=None)
            rows = _csv(server, path + "&format=csv", token=None)
            assert len(want["windows"]) > 0 and len(rows) == len(want["windows"])
            zone = ZoneInfo(want["time_zone"])
            for row, w in zip(rows, want["windows"], strict=True):
                assert _epoch(row["window_start_utc"]) == w["window_start"]
                assert _epoch(row["window_end_utc"]) == w["window_end"]
                local = dt.datetime.fromisoformat(row["window_start_local"])
                assert local.timestamp() == w["window_start"]
                assert local.utcoffset() == zone.utcoffset(local.replace(tzinfo=None))
                assert float(row["sum"]) == w["sum"] and int(row["count"]) == w["count"]
                assert _opt(row["min"]) == w["min"] and _opt(row["max"]) == w["max"]
                assert row["unit"] == want["unit"]


def test_fleet_tables_as_csv_equal_their_json(server):
    for u in UTILITIES:
        for rng in ("hour", "day"):
            want = _json(server, f"/api/fleet/states?utility={u}&range={rng}")
            rows = _csv(server, f"/api/fleet/states?utility={u}&range={rng}&format=csv")
            assert [r["state"] for r in rows[:10]] == [t["state"] for t in want["top10"]]
            assert sorted(r["state"] for r in rows) == sorted(STATES)
            for r in rows:
                assert float(r["sum"]) == want["states"][r["state"]]["sum"]
                assert int(r["count"]) == want["states"][r["state"]]["count"]
                assert _epoch(r["from_utc"]) == want["from"] and _epoch(r["to_utc"]) == want["to"]
            assert [int(r["rank"]) for r in rows] == list(range(1, len(STATES) + 1))
    want = _json(server, "/api/fleet/summary")
    rows = _csv(server, "/api/fleet/summary?format=csv")
    assert [r["utility"] for r in rows] == list(want["utilities"])
    for r in rows:
        v = want["utilities"][r["utility"]]
        assert float(r["day_sum"]) == v["today"]["sum"]
        assert int(r["day_count"]) == v["today"]["count"] and r["day_utc"] == v["today"]["date"]
        assert int(r["accepted"]) == v["accepted"] and int(r["late"]) == v["late"]
        assert _epoch(r["watermark_utc"]) == v["watermark"]
    # the CSV needs the same credentials as the JSON
    assert server.get("/api/fleet/summary?format=csv")[0] == 401
    assert server.get("/api/fleet/states?format=xml", TOKEN)[0] == 400


def test_iso_times_select_the_same_windows_as_epoch_seconds(server, sim):
    sid = sim["registry"]["service_id"].iloc[2]
    lo, hi = 1772427000, 1772427600          # 04:50 and 05:00 UTC
    base = f"/api/meters/{sid}/windows?utility=water&window=1m"
    want = _json(server, f"{base}&from={lo}&to={hi}")
    assert len(want["windows"]) == 10
    spellings = [("2026-03-02T04:50:00Z", "2026-03-02T05:00:00Z"),
                 ("2026-03-01T23:50:00-05:00", "2026-03-02T00:00:00-05:00"),
                 ("2026-03-02T05:50+01:00", "2026-03-02T06:00:00.000+01:00"),
                 ("2026-03-02T04:50:00.999Z", "2026-03-02 05:00:00z")]
    for a, b in spellings:
        got = _json(server, f"{base}&from={urllib.parse.quote(a)}&to={urllib.parse.quote(b)}")
        assert got == want, (a, b)
    # a "+" a client did not encode arrives as a space: still the same time
    assert _json(server, f"{base}&from=2026-03-02T05:50:00+01:00&to={hi}") == want
    for bad in ("2026-03-02T04:50:00", "2026-03-02", "2026-02-30T04:50:00Z", "yesterday",
                "%D9%A1%D9%A2%D9%A3%D9%A4%D9%A5%D9%A6%D9%A7%D9%A8%D9%A9%D9%A0"):
        status, body, _ = server.get(f"{base}&from={bad}", TOKEN)
        message = json.loads(body)["error"]
        assert status == 400 and "\n" not in message and "from" in message, (bad, body)


def test_today_is_the_meters_local_day_and_times_are_numbers(server, sim):
    registry = sim["registry"].set_index("service_id")
    refs = {u: reference(sim, u) for u in UTILITIES}
    split = 0
    for sid in registry.index[:40]:
        got = _json(server, f"/api/meters/{sid}?range=day")
        meter = got["meter"]
        assert meter["registered_ts"] == int(registry.loc[sid, "registered_ts"])
        assert meter["state"] == registry.loc[sid, "state"]
        zone = ZoneInfo(got["time_zone"])
        for u in UTILITIES:
            card = got["utilities"][u]
            local = dt.datetime.fromtimestamp(card["clock"], zone)
            midnight = dt.datetime.combine(local.date(), dt.time(), tzinfo=zone)
            assert card["today"]["from"] == int(midnight.timestamp())
            assert card["today"]["date"] == local.date().isoformat()
            assert card["today"]["is_today"] is False          # March 2026 is history
            ref = refs[u][refs[u]["key"] == sid]
            day = ref[ref["window_start"] >= midnight.timestamp()]
            assert card["today"]["count"] == int(day["count"].sum()), (sid, u)
            assert card["today"]["sum"] == pytest.approx(float(day["sum"].sum()), abs=1e-9)
            split += len(day) < len(ref)
    assert split > 0, "no sampled meter had a local midnight inside the data"
    found = _json(server, "/api/meters?q=" + urllib.parse.quote(registry.iloc[0]["user_name"]))
    for m in found["meters"]:
        assert m["registered_ts"] == int(registry.loc[m["service_id"], "registered_ts"])


def test_every_state_has_a_zone_a_whole_number_of_hours_from_utc():
    """The meter's day is summed from hourly windows: that holds only if each state's zone
    is whole hours from UTC, in winter and in summer (checked in the tz database)."""
    from auth_kappa.timezones import ZONES

    assert set(ZONES) == set(STATES)
    for state, name in ZONES.items():
        zone = ZoneInfo(name)
        for month in (1, 7):
            offset = dt.datetime(2026, month, 15, 12, tzinfo=zone).utcoffset()
            assert offset.total_seconds() % 3600 == 0 and offset.total_seconds() < 0, state
