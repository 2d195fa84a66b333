"""Dashboard JSON API over HTTP (a real `auth-kappa dashboard --embedded` process): values
against an independent brute-force reference, access control, validation, OpenAPI, metrics."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import subprocess
import sys
import time

import pandas as pd
import pytest

from auth_kappa.errors import UserError
from auth_kappa.topology.schema import STATES, UTILITIES
from dashboards import validation
from dashboards.app import routes
from dashboards.auth import Access, expiry_text
from dashboards.openapi import spec
from tests.support import dashboard as fixtures
from tests.support.browser import ROOT
from tests.support.dashboard import SECRET_ENV, TOKEN

sim, server = fixtures.sim, fixtures.server

def reference(sim: dict, utility: str, size: int = 60) -> pd.DataFrame:
    """Independent window sums: the simulator's lines minus its recorded malformed positions,
    exact resends once, summed per (meter, window) in plain Python."""
    truth = pd.read_parquet(sim["dir"] / "ground_truth.parquet")
    bad = set(truth[(truth["kind"] == "malformed") & (truth["utility"] == utility)]["position"])
    lines = (sim["dir"] / f"{utility}.csv").read_bytes().split(b"\n")
    seen, acc = set(), {}
    for pos, line in enumerate(lines):
        if pos in bad or not line:
            continue
        sid, _, _, _, _, value, end = line.decode().split(",")
        if (sid, end) in seen:
            continue
        seen.add((sid, end))
        key = (sid, int(end) // size * size)
        s, c = acc.get(key, (0.0, 0))
        acc[key] = (s + float(value), c + 1)
    return pd.DataFrame([(k[0], k[1], v[0], v[1]) for k, v in acc.items()],
                        columns=["key", "window_start", "sum", "count"])


def _json(server, path: str, token: str | None = TOKEN) -> dict:
    status, body, _ = server.get(path, token)
    assert status == 200, (path, status, body[:300])
    return json.loads(body)


def _sig(sid: str) -> str:
    return Access.from_env(env=SECRET_ENV, token=TOKEN).sign(sid)


# ---- values
def test_household_summary_equals_brute_force(server, sim):
    for sid in sim["registry"]["service_id"].iloc[:5]:
        got = _json(server, f"/api/meters/{sid}?range=hour&sig={_sig(sid)}", token=None)
        assert got["meter"]["user_name"] == sim["registry"].set_index("service_id").loc[
            sid, "user_name"]
        for u in UTILITIES:
            ref = reference(sim, u)
            ref = ref[ref["key"] == sid].sort_values("window_start")
            card = got["utilities"][u]
            series = {s: v for s, v in zip(card["series"]["start"], card["series"]["sum"],
                                           strict=True) if v is not None}
            assert sorted(series) == ref["window_start"].tolist(), (sid, u)
            assert [series[w] for w in sorted(series)] == pytest.approx(ref["sum"].tolist(),
                                                                        abs=1e-9)
            # the simulation is 20 minutes of one UTC day: today's total is all of it
            assert card["today"]["count"] == int(ref["count"].sum())
            assert card["today"]["sum"] == pytest.approx(float(ref["sum"].sum()), abs=1e-9)
            last = ref.iloc[-1]
            assert card["current"]["window_start"] == last["window_start"]
            assert card["current"]["sum"] == pytest.approx(last["sum"], abs=1e-12)


def test_fleet_totals_equal_the_simulators_ground_truth(server, sim):
    summary = _json(server, "/api/fleet/summary")
    assert summary["meters"] == len(sim["registry"])
    for u in UTILITIES:
        truth = sim["manifest"]["utilities"][u]
        states = _json(server, f"/api/fleet/states?utility={u}&range=day")
        assert set(states["states"]) == set(STATES)
        assert states["total"]["count"] == truth["valid_readings"]
        assert states["total"]["sum"] == pytest.approx(float(truth["consumption_sum"]), rel=1e-9)
        sums = [r["sum"] for r in states["top10"]]
        assert len(sums) == 10 and sums == sorted(sums, reverse=True)
        assert sums[0] == max(v["sum"] for v in states["states"].values())
        per = summary["utilities"][u]
        assert per["accepted"] == truth["valid_readings"]
        assert per["quarantined"] == truth["malformed"]
        assert per["duplicates"] == truth["duplicates"]
        assert per["today"]["sum"] == pytest.approx(float(truth["consumption_sum"]), rel=1e-9)


def test_meter_windows_range_query(server, sim):
    sid = sim["registry"]["service_id"].iloc[7]
    ref = reference(sim, "gas")
    ref = ref[ref["key"] == sid].sort_values("window_start")
    lo, hi = int(ref["window_start"].iloc[3]), int(ref["window_start"].iloc[9])
    got = _json(server, f"/api/meters/{sid}/windows?utility=gas&window=1m&from={lo}&to={hi}")
    assert [w["window_start"] for w in got["windows"]] == list(range(lo, hi, 60))
    assert [w["sum"] for w in got["windows"]] == pytest.approx(
        ref["sum"].iloc[3:9].tolist(), abs=1e-12)


def _redirect(server, path: str, token: str | None = TOKEN) -> tuple[int, str | None]:
    """(status, Location) of a GET, the redirect not followed."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
        r = conn.getresponse()
        r.read()
        return r.status, r.getheader("location")
    finally:
        conn.close()


def test_search_by_name_and_id_prefix_gives_signed_links(server, sim):
    row = sim["registry"].iloc[11]
    by_name = _json(server, f"/api/meters?q={row['user_name'].split()[0].lower()}&limit=50")
    assert row["service_id"] in {m["service_id"] for m in by_name["meters"]}
    by_id = _json(server, f"/api/meters?q={row['service_id'][:6]}")
    hit = next(m for m in by_id["meters"] if m["service_id"] == row["service_id"])
    # the search signs nothing; its link signs one when the operator follows it
    assert "sig=" not in hit["link"]
    status, link = _redirect(server, hit["link"])
    assert status == 303, status
    path, _, sig = link.partition("?sig=")
    assert path == f"/household/{row['service_id']}"
    expires = int(sig.split(".")[0])   # the default lifetime, 30 days from now
    assert abs(expires - (time.time() + 30 * 86400)) < 60
    assert sig == Access.from_env(env=SECRET_ENV, token=TOKEN).sign(row["service_id"],
                                                                   expires)
    assert server.get(f"/api/meters/{row['service_id']}?sig={sig}")[0] == 200


# ---- access control
def test_fleet_api_and_metrics_need_the_operator_token(server):
    for path in ("/api/fleet/summary", "/api/fleet/states?utility=gas", "/metrics",
                 "/api/meters?q=a", "/api/fleet/stream"):
        assert server.get(path, token=None)[0] == 401, path
        assert server.get(path, token="wrong-token-wrong-token")[0] == 403, path
    status, body, headers = server.get("/api/fleet/summary", token=None)
    assert headers["WWW-Authenticate"].startswith("Bearer") and b"error" in body


def test_household_link_opens_only_its_own_meter(server, sim):
    a, b = sim["registry"]["service_id"].iloc[:2]
    assert server.get(f"/api/meters/{a}?sig={_sig(a)}", token=None)[0] == 200
    assert server.get(f"/api/meters/{b}?sig={_sig(a)}", token=None)[0] == 403   # edited URL
    assert server.get(f"/api/meters/{b}/windows?utility=gas&sig={_sig(a)}", token=None)[0] == 403
    assert server.get(f"/api/meters/{b}/stream?sig={_sig(a)}", token=None)[0] == 403
    assert server.get(f"/api/meters/{b}", token=None)[0] == 401
    tampered = _sig(a)[:-2] + ("AA" if not _sig(a).endswith("AA") else "BB")
    assert server.get(f"/api/meters/{a}?sig={tampered}", token=None)[0] == 403
    # a household signature is no operator credential
    assert server.get(f"/api/fleet/summary?sig={_sig(a)}", token=None)[0] in (400, 401)
    assert server.get(f"/api/meters/{b}", token=TOKEN)[0] == 200    # the operator sees all
    # the page itself refuses too, and carries no data
    status, body, _ = server.get(f"/household/{b}?sig={_sig(a)}")
    assert status == 403 and b"data-sid" not in body


def test_a_different_secret_signs_differently():
    a = Access.from_env(env=SECRET_ENV, token=TOKEN)
    b = Access.from_env(env={"AUTH_DASHBOARD_SECRET": "another-secret-" + "x" * 32},
                        token=TOKEN)
    sid = "1b4e28ba-2fa1-41d2-883f-0016d3cca427"
    assert a.sign(sid, 2_000_000_000) != b.sign(sid, 2_000_000_000)
    assert re.fullmatch(r"2000000000\.[A-Za-z0-9_-]{24}", a.sign(sid, 2_000_000_000))


def test_household_link_expires_and_its_expiry_cannot_be_edited(server, sim):
    sid = sim["registry"]["service_id"].iloc[3]
    access = Access.from_env(env=SECRET_ENV, token=TOKEN)
    past = int(time.time()) - 60
    expired = access.sign(sid, past)
    for path in (f"/api/meters/{sid}", f"/api/meters/{sid}/windows?utility=gas",
                 f"/api/meters/{sid}/stream"):
        status, body, _ = server.get(f"{path}{'&' if '?' in path else '?'}sig={expired}")
        assert status == 403 and "expired" in json.loads(body)["error"], path
    status, body, _ = server.get(f"/household/{sid}?sig={expired}")
    assert status == 403 and b"this link expired on" in body and b"data-sid" not in body
    # pushing the expiry out keeps the old HMAC, which covered the old expiry: refused
    extended = f"{past + 10 * 365 * 86400}.{expired.split('.')[1]}"
    status, body, _ = server.get(f"/api/meters/{sid}?sig={extended}")
    assert status == 403 and "not valid" in json.loads(body)["error"]
    # a link signed before links expired (a bare HMAC of the id) no longer opens anything
    bare = base64.urlsafe_b64encode(hmac.new(access.secret, f"household:{sid}".encode(),
                                             hashlib.sha256).digest()[:18]).decode()
    assert server.get(f"/api/meters/{sid}?sig={bare}")[0] == 403
    assert server.get(f"/api/meters/{sid}?sig={access.sign(sid)}")[0] == 200


def test_link_lifetime_from_env_and_flag():
    sid = "1b4e28ba-2fa1-41d2-883f-0016d3cca427"
    two_hours = Access.from_env(env={**SECRET_ENV, "AUTH_DASHBOARD_LINK_TTL": "2h"},
                                token=TOKEN)
    assert abs(int(two_hours.sign(sid).split(".")[0]) - (time.time() + 7200)) < 5
    flag = Access.from_env(env={**SECRET_ENV, "AUTH_DASHBOARD_LINK_TTL": "2h"}, token=TOKEN,
                           link_ttl="7d")
    assert flag.link_ttl == 7 * 86400
    for bad in ("soon", "0s"):
        with pytest.raises(UserError, match="AUTH_DASHBOARD_LINK_TTL"):
            Access.from_env(env={**SECRET_ENV, "AUTH_DASHBOARD_LINK_TTL": bad},
                            token=TOKEN)


def test_the_printed_household_link_opens_its_page_and_names_its_expiry(server):
    log = server.log.read_text()
    link = re.search(r"a household page (http://\S+)", log).group(1)
    expires = re.search(r"that link expires on (\d{4}-\d\d-\d\d \d\d:\d\d UTC)", log).group(1)
    sig = link.split("?sig=")[1]
    assert expiry_text(int(sig.split(".")[0])) == expires
    status, body, _ = server.get(link[len(server.base):])
    assert status == 200 and b"data-sid" in body


# ---- validation: nothing unchecked reaches a Redis key
@pytest.mark.parametrize("sid", [
    "*", "1b4e28ba-2fa1-41d2-883f-0016d3cca42*", "1B4E28BA-2FA1-41D2-883F-0016D3CCA427",
    "1b4e28ba-2fa1-41d2-883f-0016d3cca427}:x", "{1b4e28ba-2fa1-41d2-883f-0016d3cca427}",
    "1b4e28ba-2fa1-41d2-883f-0016d3cca427\n", "1b4e28ba2fa141d2883f0016d3cca427xxxx", ""])
def test_bad_service_ids_are_rejected(sid):
    with pytest.raises(validation.Invalid):
        validation.service_id(sid)


def test_bad_parameters_answer_400(server, sim):
    sid = sim["registry"]["service_id"].iloc[0]
    bad = [f"/api/meters/{sid.upper()}", f"/api/meters/{sid}?range=week",
           f"/api/meters/{sid}?range=hour&extra=1", "/api/meters/x%2A",
           f"/api/meters/{sid}/windows?utility=steam",
           f"/api/meters/{sid}/windows?utility=gas&window=5m",
           f"/api/meters/{sid}/windows?utility=gas&from=1772409900&to=1772409600",
           f"/api/meters/{sid}/windows?utility=gas&from=12",
           f"/api/meters/{sid}/windows?utility=gas&from=-5",
           f"/api/meters/{sid}/windows?utility=gas&from=1700000000&to=1800000000",
           "/api/fleet/states?utility=gas*", "/api/fleet/states?range=1y",
           "/api/meters?q=%2A", "/api/meters?q=a&limit=1000", "/api/meters?q=" + "a" * 65]
    for path in bad:
        status, body, _ = server.get(path, TOKEN)
        assert status == 400, (path, status)
        assert json.loads(body)["error"]


# ---- documentation and operations
def test_openapi_documents_every_api_route():
    documented = set(spec(routes())["paths"])
    served = {r.path for r in routes() if getattr(r, "path", "").startswith("/api/")}
    served |= {"/healthz", "/metrics"}
    assert documented == served


def test_openapi_refuses_an_undocumented_api_route():
    """The document is generated from the routes: a new /api route without its words in
    dashboards/openapi.py stops the document, it is not silently left out."""
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def undocumented(request: object) -> PlainTextResponse:
        return PlainTextResponse("")

    with pytest.raises(LookupError, match="/api/new"):
        spec([*routes(), Route("/api/new", undocumented)])
    served = spec([*routes(), Route("/bench/x", undocumented)])["paths"]
    assert "/bench/x" not in served and "/api/meters" in served


def test_healthz_public_and_metrics_for_prometheus(server, sim):
    status, body, headers = server.get("/healthz", token=None)
    assert status == 200 and json.loads(body)["status"] == "ok"
    assert "default-src 'self'" in headers["content-security-policy"]
    assert server.get("/openapi.json", token=None)[0] == 200
    status, body, headers = server.get("/metrics", TOKEN)
    text = body.decode()
    assert status == 200 and headers["content-type"].startswith("text/plain")
    truth = sim["manifest"]["utilities"]["gas"]
    assert f'auth_readings_accepted_total{{utility="gas"}} {truth["valid_readings"]}' in text
    assert 'auth_dashboard_request_seconds_bucket{route="/healthz",le="+Inf"}' in text
    for line in text.splitlines():  # exposition format: comments or "name{labels} value"
        assert line.startswith("#") or len(line.rsplit(" ", 1)) == 2, line
        if not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])


def test_vendored_browser_files_match_their_manifest():
    from dashboards import vendor

    assert vendor.check() == []


# ---- the command line: user mistakes are one line and a non-zero exit
def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "auth_kappa.cli.main", "dashboard", *args],
                          capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, **SECRET_ENV, **(env or {})})


def test_cli_mistakes_are_one_line(tmp_path, server):
    cases = [(["--embedded", str(tmp_path / "missing")], "is not a folder"),
             (["--embedded", str(tmp_path), "--port", str(server.port)], None),
             (["load-registry", str(tmp_path / "nope.parquet")], "not found"),
             (["--embedded", str(tmp_path), "--link-ttl", "soon"], "--link-ttl"),
             ([], "at least 16 characters")]
    (tmp_path / "electricity.csv").write_text("")
    for args, text in cases:
        env = {"AUTH_OPERATOR_TOKEN": "short"} if not args else {}
        run = _cli(*args, env=env)
        assert run.returncode != 0, args
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("auth-kappa: "), run.stderr
        if text:
            assert text in lines[0]


def test_unreachable_redis_is_one_line_without_the_password(sim):
    """Loading the registry, creating the ACL user and the dashboard's start-up check share one
    connection block: the same exit code (3), one line, the fix, and no password."""
    url = "redis://admin:s3cret-pass@127.0.0.1:1/0"
    registry_file = str(sim["dir"] / "registry.parquet")
    cases = [(["load-registry", registry_file], {"AUTH_REDIS_URL": url}, "AUTH_REDIS_URL"),
             (["create-redis-user"], {"AUTH_REDIS_URL": url}, "AUTH_REDIS_URL"),
             ([], {"AUTH_DASHBOARD_REDIS_URL": url, "AUTH_OPERATOR_TOKEN": TOKEN},
              "AUTH_DASHBOARD_REDIS_URL")]
    for args, env, variable in cases:
        run = _cli(*args, env=env)
        lines = run.stderr.strip().splitlines()
        assert run.returncode == 3 and len(lines) == 1, (args, run.stderr)
        assert "cannot reach Redis at redis://admin:***@127.0.0.1:1/0" in lines[0], lines
        assert "auth-kappa stack up" in lines[0] and variable in lines[0]
        assert "s3cret" not in run.stderr + run.stdout
