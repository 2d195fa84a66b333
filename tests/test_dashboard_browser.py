"""The pages in a real browser (Debian's Chromium via Playwright) over the embedded engine:
they load, show the API's numbers, draw 51 regions, work offline, refuse strangers, fit a
phone, speak plainly in the meter's local time, and download CSVs equal to the API."""

from __future__ import annotations

import csv
import datetime as dt
import http.client
import io
import json
import re
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from auth_kappa.topology.schema import STATES, UTILITIES
from dashboards.auth import Access
from tests.support import browser as browsers
from tests.support import dashboard as fixtures
from tests.support.browser import new_page
from tests.support.dashboard import SECRET_ENV, TOKEN

sim, server, browser = fixtures.sim, fixtures.server, browsers.browser
pytestmark = pytest.mark.browser


def _sig(sid: str) -> str:
    return Access.from_env(env=SECRET_ENV, token=TOKEN).sign(sid)


def _login(pg, server) -> None:
    pg.page.goto(server.base + "/login")
    pg.page.fill("#token", TOKEN)
    pg.page.click("#login-form button[type=submit]")
    pg.page.wait_for_url(server.base + "/fleet")


def test_household_page_shows_three_live_cards(browser, server, sim):
    sid = sim["registry"]["service_id"].iloc[3]
    pg = new_page(browser)
    pg.page.goto(f"{server.base}/household/{sid}?sig={_sig(sid)}")
    pg.page.wait_for_selector("#page[data-loaded='1']")
    pg.page.wait_for_selector("#live[data-state='live']")   # the SSE stream answered
    api = json.loads(server.get(f"/api/meters/{sid}", TOKEN)[1])
    name = sim["registry"].set_index("service_id").loc[sid, "user_name"]
    assert pg.page.inner_text("#meter-name") == name
    for u in UTILITIES:
        card = f"#card-{u}"
        raw = pg.page.get_attribute(f"{card} [data-field='today']", "data-raw")
        assert float(raw) == pytest.approx(api["utilities"][u]["today"]["sum"], rel=1e-12)
        assert api["utilities"][u]["unit"] in pg.page.inner_text(f"{card} [data-field='unit']")
        assert pg.page.locator(f"{card} canvas").count() == 1     # the uPlot chart
    pg.page.wait_for_selector("#alerts[data-loaded='1']")   # its alerts, as the API words them
    alerts = json.loads(server.get(f"/api/meters/{sid}/alerts", TOKEN)[1])
    opened = [a["text"] for u in UTILITIES for a in alerts["utilities"][u]["open"]]
    assert pg.page.locator("#alerts-open li").all_inner_texts() == opened
    assert pg.page.locator("#alerts-none").is_visible() == (not opened)
    pg.page.wait_for_selector("#bills[data-loaded='1']")   # the bill, as the API prices it
    bill = json.loads(server.get(f"/api/meters/{sid}/bill", TOKEN)[1])["utilities"]
    assert set(bill) == set(UTILITIES)
    for u, b in bill.items():
        card = pg.page.locator(f"#bill-cards .bill.{u}")
        assert card.locator("h3").inner_text() == f"{u.capitalize()}: ${b['cost']:.2f}"
        assert card.locator("tr[data-period] .cost").all_inner_texts() == [
            f"${r['cost']:.2f}" for r in b["bill"]]
        assert card.locator(".measured").inner_text().startswith("Measured ")
    pg.page.click("button[data-range='day']")
    expect(pg.page.locator("#card-gas [data-field='chart'] canvas")).to_have_count(1)
    expect(pg.page.locator("#live")).to_have_attribute("data-state", "live")
    pg.shot("household")
    assert pg.errors == [] and pg.external == []


def test_fleet_map_has_all_51_regions_and_every_utility(browser, server):
    pg = new_page(browser)
    _login(pg, server)
    pg.page.wait_for_selector("#page[data-loaded='1']")
    regions = pg.page.eval_on_selector_all("svg#map path[data-state]",
                                           "ps => ps.map(p => p.dataset.state)")
    assert len(regions) == 51 and set(regions) == set(STATES)
    assert pg.page.locator("#top10 tbody tr").count() == 10
    for u in ("gas", "water", "electricity"):
        pg.page.click(f"button[data-utility='{u}']")
        unit = json.loads(server.get(f"/api/fleet/states?utility={u}", TOKEN)[1])
        expect(pg.page.locator("#top10-unit")).to_have_text(unit["display"]["short"])
        top = pg.page.inner_text("#top10 tbody tr:first-child td:nth-child(2)")
        assert top == unit["top10"][0]["state"]
        value = pg.page.get_attribute(f"#state-{top}", "data-value")
        assert float(value) == pytest.approx(unit["top10"][0]["sum"], rel=1e-12)
        shown = pg.page.inner_text("#top10 tbody tr:first-child td:nth-child(3)")   # 3 digits
        assert float(shown.replace(",", "")) == pytest.approx(
            unit["top10"][0]["sum"] * unit["display"]["factor"], rel=5e-3)
        if u == "gas":
            pg.shot("fleet-gas")
    accepted = pg.page.get_attribute("#fleet-totals tr[data-utility='gas'] "
                                     "[data-field='accepted']", "data-raw")
    assert int(accepted) == json.loads(server.get("/api/fleet/summary", TOKEN)[1])[
        "utilities"]["gas"]["accepted"]
    pg.page.wait_for_selector("#fleet-alerts[data-loaded='1']")   # counts by kind and state
    alerts = json.loads(server.get("/api/fleet/alerts", TOKEN)[1])
    for kind, n in alerts["totals"].items():
        assert pg.page.get_attribute(f"#alert-badges [data-kind='{kind}']", "data-open") == \
            str(n["open"])
    assert pg.page.locator("#alert-counts tbody tr").count() == len(alerts["counts"])
    assert pg.page.locator("#alert-open li").count() == len(alerts["open"])
    pg.shot("fleet")
    assert pg.errors == [] and pg.external == []


def test_operator_finds_a_meter_by_name(browser, server, sim):
    row = sim["registry"].iloc[5]
    pg = new_page(browser)
    _login(pg, server)
    pg.page.goto(server.base + "/household")
    pg.page.fill("#search-q", row["user_name"].split()[0])
    pg.page.click("#search-form button[type=submit]")
    pg.page.click(f"#search-results a[href*='{row['service_id']}']")
    pg.page.wait_for_selector("#page[data-loaded='1']")
    assert pg.page.inner_text("#meter-id") == row["service_id"]
    assert pg.errors == []


def test_strangers_are_refused(browser, server, sim):
    a, b = sim["registry"]["service_id"].iloc[:2]
    pg = new_page(browser)
    # the fleet page without a session goes to the sign-in form
    pg.page.goto(server.base + "/fleet")
    assert pg.page.url == server.base + "/login"
    # a wrong token stays refused
    pg.page.fill("#token", "not-the-operator-token")
    pg.page.click("#login-form button[type=submit]")
    assert "not valid" in pg.page.inner_text("#login-error")
    assert pg.page.goto(server.base + "/api/fleet/summary").status == 401
    # meter A's link with meter B's id: 403, and no card on the page
    resp = pg.page.goto(f"{server.base}/household/{b}?sig={_sig(a)}")
    assert resp.status == 403
    assert pg.page.get_attribute("#page", "data-status") == "403"
    assert pg.page.locator(".card").count() == 0
    # the visitor form with the right code opens the meter; a wrong code does not
    pg.page.goto(server.base + "/household")
    pg.page.fill("#open-sid", a)
    pg.page.fill("#open-sig", _sig(a))
    pg.page.click("#open-form button[type=submit]")
    pg.page.wait_for_selector("#page[data-loaded='1']")
    assert pg.page.inner_text("#meter-id") == a
    pg.shot("refused-" + "household")
    assert pg.external == []


def _downloaded(pg, selector: str) -> tuple[str, list[dict[str, str]]]:
    """Click a download button; (its href, the CSV's rows)."""
    href = pg.page.get_attribute(selector, "href")
    with pg.page.expect_download() as info:
        pg.page.click(selector)
    assert info.value.suggested_filename.endswith(".csv")
    with open(info.value.path(), encoding="utf-8") as f:
        return href, list(csv.DictReader(io.StringIO(f.read())))


def _check_household(pg, server, sid: str) -> None:
    """Plain labels, local times with UTC on hover, gas in cubic feet, the CSV download."""
    api = json.loads(server.get(f"/api/meters/{sid}", TOKEN)[1])
    zone = ZoneInfo(api["time_zone"])
    text = pg.page.inner_text("#page")
    for jargon in ("current window", "event time", "since 20"):
        assert jargon not in text.lower()
    for u in UTILITIES:
        card, c = f"#card-{u}", api["utilities"][u]
        live = c["today"]["is_today"]
        assert pg.page.inner_text(f"{card} [data-field='current-label']") == (
            "this minute" if live else "latest minute in the data")
        assert pg.page.inner_text(f"{card} [data-field='today-label']") == (
            "today" if live else "latest day in the data")
        start = dt.datetime.fromtimestamp(c["current"]["window_start"], zone)
        when = pg.page.inner_text(f"{card} [data-field='current-when']").replace("\u202f", " ")
        assert f"{start.hour % 12 or 12}:{start.minute:02d}" in when and start.strftime("%Z") in when
        utc = dt.datetime.fromtimestamp(c["current"]["window_start"], dt.UTC)
        title = pg.page.get_attribute(f"{card} [data-field='current-when']", "title")
        assert utc.strftime("%H:%M") in title and "UTC" in title
        day = pg.page.inner_text(f"{card} [data-field='today-when']")
        assert dt.date.fromisoformat(c["today"]["date"]).strftime("%b %-d, %Y") in day
    # gas: cubic feet (the display factor), ccf beside it
    gas = api["utilities"]["gas"]
    value = float(pg.page.inner_text("#card-gas [data-field='today']").replace(",", ""))
    assert value == pytest.approx(gas["today"]["sum"] * gas["display"]["factor"], rel=5e-3)
    assert pg.page.get_attribute("#card-gas [data-field='today']", "data-unit") == "cubic feet"
    assert "ccf" in pg.page.inner_text("#card-gas [data-field='today-also']")
    # the CSV button gives the rows of the windows API for the chart's range
    href, rows = _downloaded(pg, "#card-gas [data-field='csv']")
    want = json.loads(server.get(href.replace("&format=csv", ""))[1])["windows"]
    assert len(rows) == len(want) > 0
    for row, w in zip(rows, want, strict=True):
        start = dt.datetime.fromisoformat(row["window_start_utc"].replace("Z", "+00:00"))
        assert int(start.timestamp()) == w["window_start"]
        assert float(row["sum"]) == w["sum"] and int(row["count"]) == w["count"]


def _check_fleet(pg, server) -> None:
    states = json.loads(server.get("/api/fleet/states?utility=electricity", TOKEN)[1])
    assert states["display"]["unit"] in pg.page.inner_text("#legend")
    _, rows = _downloaded(pg, "#states-csv")
    assert {r["state"]: (float(r["sum"]), int(r["count"])) for r in rows} == {
        s: (v["sum"], v["count"]) for s, v in states["states"].items()}
    summary = json.loads(server.get("/api/fleet/summary", TOKEN)[1])
    _, rows = _downloaded(pg, "#summary-csv")
    assert {r["utility"]: int(r["accepted"]) for r in rows} == {
        u: v["accepted"] for u, v in summary["utilities"].items()}


def _session_cookie(server) -> dict:
    """Sign in as a script would (POST /login, no browser), for a browser context's cookies."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("POST", "/login", body=f"token={TOKEN}",
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    resp = conn.getresponse()
    assert resp.status == 303, resp.status
    name, _, value = resp.getheader("Set-Cookie").split(";")[0].partition("=")
    conn.close()
    return {"name": name, "value": value, "url": server.base}


def test_every_page_fits_a_phone_and_a_desktop(browser, server, sim):
    """Each page at 390 px (no sideways scrolling) and at 1280 px, with screenshots in
    test-artifacts/; one title each; the household page as its household sees it."""
    sid = sim["registry"]["service_id"].iloc[3]
    visitor = [("index", "/"), ("login", "/login"), ("find", "/household"),
               ("household", f"/household/{sid}?sig={_sig(sid)}"),
               ("error", "/household/not-a-meter")]
    operator = [("fleet", "/fleet"), ("docs", "/docs")]
    for width, height in ((390, 844), (1280, 900)):
        pg = new_page(browser, width, height)
        for name, path in visitor + operator:
            if name == "fleet":     # the operator's pages: signed in (the form has its test)
                pg.page.context.add_cookies([_session_cookie(server)])
            pg.page.goto(server.base + path)
            if name in ("household", "fleet"):
                pg.page.wait_for_selector("#page[data-loaded='1']")
                pg.page.wait_for_selector("#live[data-state='live']")
            assert len(re.findall("AUTH-Kappa", pg.page.title())) == 1, pg.page.title()
            if width == 390:
                overflow = pg.page.evaluate("document.documentElement.scrollWidth")
                assert overflow <= 390, (name, overflow)
            pg.shot(f"{name}-{width}")
            if name == "household" and width == 390:
                _check_household(pg, server, sid)
            if name == "fleet" and width == 1280:
                _check_fleet(pg, server)
        # the one console error expected: the error page's own 400
        assert [e for e in pg.errors if "status of 400" not in e] == [], pg.errors
        assert pg.external == []
        pg.page.context.close()
