"""The dashboard against a real run: a Faust worker fills Redis from Kafka, the dashboard reads
it as a read-only ACL user, and a browser sees new readings arrive over SSE."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pandas as pd
import pytest
import redis

from auth_kappa.stack import manager
from auth_kappa.topology.schema import UTILITIES
from dashboards.auth import Access
from tests.support import browser as browsers
from tests.support.browser import ROOT, new_page, start_server
from tests.support.dashboard import SECRET_ENV
from tests.support.kafka import producer as ordered_producer
from tests.support.live import LiveCase

browser = browsers.browser
pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.browser]
TOKEN = "live-operator-token-0123456789"


@pytest.fixture
def kafka_redis(config):
    """Like `stack`, but only the services this test uses (S3 may be down for another test),
    and patient: a Redis busy with someone's large transaction can miss one 1 s probe."""
    deadline = time.monotonic() + 15
    while True:
        down = [s.name for s in manager.status(config) if s.name in ("kafka", "redis")
                and not s.answering]
        if not down:
            return config
        if time.monotonic() > deadline:
            pytest.fail(f"not answering: {', '.join(down)}; run `auth-kappa stack up`")
        time.sleep(1)


@pytest.fixture
def case(kafka_redis, tmp_path, unique):
    c = LiveCase(f"dl{unique}", tmp_path, extra_env={"AUTH_REGISTRY_PREFIX": f"auth:reg{unique}:"})
    c.create_topics()
    yield c
    c.cleanup()
    admin = redis.Redis.from_url(c.config.redis_url)
    for key in admin.scan_iter(match=f"auth:reg{unique}:*", count=1000):
        admin.unlink(key)
    admin.execute_command("ACL", "DELUSER", f"dash{unique}")


def _cli(case: LiveCase, *args: str) -> str:
    run = subprocess.run([sys.executable, "-m", "auth_kappa.cli.main", *args], env=case.env,
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stdout


def _wait(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_live_dashboard_updates_in_the_browser(case, browser, unique):
    m = case.simulate("--meters", "60", "--duration", "6m", "--seed", "13",
                      "--late-fraction", "0.02", "--late-delay", "3m",
                      "--duplicate-fraction", "0.02", "--malformed-fraction", "0.01")
    case.start_worker()
    case.wait_until({u: m["utilities"][u]["messages"] for u in UTILITIES})
    time.sleep(1.0)   # side outputs are flushed right after the checkpoint

    # read-only Redis user and the registry, through the CLI as an operator would
    made = _cli(case, "dashboard", "create-redis-user", "--user", f"dash{unique}",
                "--url-file", str(case.workdir / "dash.url"))
    url = (case.workdir / "dash.url").read_text().strip()
    assert urlsplit(url).password and urlsplit(url).password not in made
    with pytest.raises(redis.exceptions.NoPermissionError):
        redis.Redis.from_url(url).hset(f"auth:{case.name}:s:gas:60", "CA:0", b"x")
    registry = pd.read_parquet(case.workdir / "sim-kafka" / "registry.parquet")
    _cli(case, "dashboard", "load-registry", str(case.workdir / "sim-kafka" / "registry.parquet"))
    server = start_server([], {**case.env, **SECRET_ENV, "AUTH_DASHBOARD_REDIS_URL": url},
                          case.workdir / "dashboard.log", TOKEN)
    try:
        _check_api(case, server, m, registry)
        _check_browser(case, server, browser, registry)
    finally:
        server.stop()


def _check_api(case: LiveCase, server, m: dict, registry: pd.DataFrame) -> None:
    summary = json.loads(server.get("/api/fleet/summary", TOKEN)[1])
    assert summary["source"] == "redis" and summary["namespace"] == case.name
    assert summary["meters"] == len(registry)
    totals = case.state_totals()
    late = {u: 0 for u in UTILITIES}
    # Playwright's sync API keeps an event loop in this thread; read Kafka from another one
    with ThreadPoolExecutor(1) as pool:
        records = pool.submit(case.read_topic, "late").result()
    for r in records:
        late[dict(r.headers)["source"].decode().split(":")[0]] += 1
    for u in UTILITIES:
        per = summary["utilities"][u]
        # the workers' counters, published in the checkpoint transaction, match the windows
        assert per["accepted"] == totals[u][0]
        assert per["late"] == late[u]
        assert per["quarantined"] == m["utilities"][u]["malformed"]
        assert per["accepted"] + per["late"] == m["utilities"][u]["valid_readings"]
        states = json.loads(server.get(f"/api/fleet/states?utility={u}", TOKEN)[1])
        assert states["total"]["count"] == totals[u][0]
        assert states["total"]["sum"] == pytest.approx(totals[u][1], rel=1e-9)
    store = case.store()
    sid = registry["service_id"].iloc[0]
    got = json.loads(server.get(f"/api/meters/{sid}", TOKEN)[1])
    for u in UTILITIES:
        ref = store.read_windows("meter", u, 60, key=sid)
        card = got["utilities"][u]
        assert card["today"]["count"] == int(ref["count"].sum())
        assert card["current"]["window_start"] == int(ref["window_start"].iloc[-1])
    a, b = registry["service_id"].iloc[:2]
    sig_a = Access.from_env(env=SECRET_ENV, token=TOKEN).sign(a)
    assert server.get(f"/api/meters/{b}?sig={sig_a}")[0] == 403
    assert server.get("/api/fleet/summary")[0] == 401


def _check_browser(case: LiveCase, server, browser, registry: pd.DataFrame) -> None:
    row = registry.iloc[0]
    sid = row["service_id"]
    household, fleet = new_page(browser), new_page(browser)
    access = Access.from_env(env=SECRET_ENV, token=TOKEN)
    household.page.goto(server.base + access.household_link(sid))
    household.page.wait_for_selector("#live[data-state='live']")
    today = "#card-electricity [data-field='today']"
    before = float(household.page.get_attribute(today, "data-raw"))
    fleet.page.goto(server.base + "/login#token=" + TOKEN)    # the link the CLI prints
    fleet.page.wait_for_selector("#live[data-state='live']")
    accepted = "#fleet-totals tr[data-utility='electricity'] [data-field='accepted']"
    accepted_before = int(fleet.page.get_attribute(accepted, "data-raw"))

    states_before = json.loads(server.get("/api/fleet/states?utility=electricity", TOKEN)[1])

    # six more readings for this meter, after the newest event time: never late
    clock = json.loads(server.get(f"/api/meters/{sid}", TOKEN)[1])["utilities"][
        "electricity"]["clock"]
    producer = ordered_producer(case.config.kafka)
    for k in range(1, 7):
        end = clock + 5 * k
        line = f"{sid},{row['user_name']},{row['type']},{end - 5},{row['state']},0.5,{end}"
        producer.produce(f"{case.name}-electricity", line.encode(), key=sid.encode())
    producer.flush(30)

    _wait(lambda: float(household.page.get_attribute(today, "data-raw")) > before + 2.9,
          what="the household's today value to grow by 3 kWh over SSE")
    assert float(household.page.get_attribute(today, "data-raw")) == pytest.approx(
        before + 3.0, abs=1e-9)
    _wait(lambda: int(fleet.page.get_attribute(accepted, "data-raw")) == accepted_before + 6,
          what="the fleet's accepted counter to grow by 6")
    assert fleet.page.locator("svg#map path[data-state]").count() == 51
    # the fleet map's cache of final windows did not hide the new (open) window
    def states_now() -> dict:
        return json.loads(server.get("/api/fleet/states?utility=electricity", TOKEN)[1])

    _wait(lambda: states_now()["total"]["count"] == states_before["total"]["count"] + 6,
          what="the fleet map to count the 6 new readings")
    states = states_now()
    assert states["states"][row["state"]]["sum"] == pytest.approx(
        states_before["states"][row["state"]]["sum"] + 3.0, abs=1e-9)
    household.shot("household-live")
    fleet.shot("fleet-live")
    for pg in (household, fleet):
        assert pg.errors == [] and pg.external == []
