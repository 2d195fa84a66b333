"""The pages in a real browser (Debian's Chromium via Playwright) over the embedded engine:
they load, show the API's numbers, draw 51 regions, work offline, and refuse strangers."""

from __future__ import annotations

import json

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
        assert pg.page.inner_text(f"{card} [data-field='unit']") == api["utilities"][u]["unit"]
        assert pg.page.locator(f"{card} canvas").count() == 1     # the uPlot chart
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
        expect(pg.page.locator("#top10-unit")).to_have_text(unit["unit"])
        top = pg.page.inner_text("#top10 tbody tr:first-child td:nth-child(2)")
        assert top == unit["top10"][0]["state"]
        value = pg.page.get_attribute(f"#state-{top}", "data-value")
        assert float(value) == pytest.approx(unit["top10"][0]["sum"], rel=1e-12)
        if u == "gas":
            pg.shot("fleet-gas")
    accepted = pg.page.get_attribute("#fleet-totals tr[data-utility='gas'] "
                                     "[data-field='accepted']", "data-raw")
    assert int(accepted) == json.loads(server.get("/api/fleet/summary", TOKEN)[1])[
        "utilities"]["gas"]["accepted"]
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
