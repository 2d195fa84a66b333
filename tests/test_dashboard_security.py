"""Dashboard security over real HTTP: uvicorn on a free port, configured exactly as
`auth-kappa dashboard` configures it (serve.server_config), over the embedded source of a
small simulated fleet; the Redis parts against the real Redis of the stack."""

from __future__ import annotations

import http.client
import io
import json
import logging
import os
import re
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
import pytest
import redis
import uvicorn

from auth_kappa.config import Config
from auth_kappa.errors import UserError
from dashboards import acl, audit, serve
from dashboards.auth import COOKIE, Access, link_secret
from dashboards.context import Context, Settings
from tests.support.browser import ROOT, free_port

TOKEN = "security-operator-token-0123456789"
SECRET_ENV = {"AUTH_DASHBOARD_SECRET": "security-test-link-secret-0123456789abcdef"}
EDGES = dict(max_body=16384, body_timeout=1.0, header_timeout=1.0, sse_per_link=3,
             sse_per_client=8, sse_max_clients=10, max_connections=40, sse_interval=0.2)


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("sec-sim")
    run = subprocess.run([sys.executable, "-m", "auth_kappa.cli.main", "simulate", "--meters",
                          "40", "--duration", "5m", "--seed", "5", "--out", str(out), "--quiet"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr
    return {"dir": out, "ids": pd.read_parquet(out / "registry.parquet")["service_id"].tolist()}


class Served:
    """uvicorn in a thread, built by serve.server_config like `auth-kappa dashboard`."""

    def __init__(self, context: Context, **tls: str) -> None:
        self.context, self.port = context, free_port()
        config = serve.server_config(context, "127.0.0.1", self.port, "warning",
                                     tls.get("certfile"), tls.get("keyfile"))
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "no server"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def raw(self, data: bytes) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        s.sendall(data)
        return s

    def request(self, method: str, path: str, headers: dict | None = None,
                body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body or None, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def bearer(self, path: str) -> int:
        return self.request("GET", path, {"Authorization": f"Bearer {TOKEN}"})[0]

    def login(self, origin: bool = True) -> tuple[int, dict[str, str]]:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if origin:
            headers["Origin"] = f"http://127.0.0.1:{self.port}"
        status, got, _ = self.request("POST", "/login", headers, f"token={TOKEN}".encode())
        return status, got


def _context(sim: dict, **settings: object) -> Context:
    access = Access.from_env(env=SECRET_ENV, token=TOKEN)
    return Context(serve.embedded_reader(sim["dir"]), access, Settings(**{**EDGES, **settings}))


@pytest.fixture(scope="module")
def app(sim) -> Iterator[Served]:
    served = Served(_context(sim))
    yield served
    served.stop()


def _status_line(sock: socket.socket, timeout: float = 5.0) -> int:
    """The status of the answer on a raw socket (0: closed without one)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return 0
        data += chunk
    return int(data.split(b" ", 2)[1])


def _closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed the connection, None if it kept it open."""
    started = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - started < seconds:
        try:
            if sock.recv(4096) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except ConnectionResetError:
            return time.monotonic() - started
    return None


# ---- bodies
def test_a_large_body_gets_413_before_it_is_read(app):
    """A 20 MB Content-Length is refused at once, on every endpoint: the server does not
    wait for (or read) the body; a chunked body is cut at the limit."""
    for method, path in (("POST", "/login"), ("POST", "/logout"), ("GET", "/healthz"),
                         ("GET", "/api/fleet/summary"), ("POST", "/api/meters")):
        sock = app.raw(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: "
                       f"http://127.0.0.1\r\nContent-Length: 20000000\r\n\r\nabc".encode())
        with sock:
            started = time.monotonic()
            assert _status_line(sock, 3.0) == 413, path
            assert time.monotonic() - started < 1.0
    sock = app.raw(b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                   b"Content-Type: application/x-www-form-urlencoded\r\n\r\n")
    with sock:
        try:
            for _ in range(64):   # 64 x 4 KiB: the answer comes after the fifth chunk
                sock.sendall(b"1000\r\n" + b"t" * 4096 + b"\r\n")
        except OSError:
            pass                  # the server closed the connection once it answered
        assert _status_line(sock) == 413
    # a body within the limit still signs in
    assert app.login()[0] == 303


def test_a_stalled_body_gets_408(app):
    sock = app.raw(b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n"
                   b"Content-Type: application/x-www-form-urlencoded\r\n\r\ntoken=")
    with sock:
        assert _status_line(sock, 4.0) == 408


# ---- slow clients, connection and stream caps
def test_partial_headers_are_cut_off(app):
    """A client sending a header byte now and then (and one sending nothing) is
    disconnected after the header deadline (1 s here), not held forever."""
    idle = app.raw(b"")
    slow = app.raw(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    with idle, slow:
        started = time.monotonic()
        closed = None
        while closed is None and time.monotonic() - started < 4:
            try:
                slow.sendall(b"X")
            except OSError:
                closed = time.monotonic() - started
                break
            closed = _closed_within(slow, 0.3)
            closed = closed and time.monotonic() - started
        assert closed is not None and closed < 3, "slow headers were not cut off"
        assert _closed_within(idle, 2) is not None
    # headers without end, sent fast: cut off by size (431), not only by time
    flood = app.raw(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    with flood:
        try:
            for _ in range(64):
                flood.sendall(b"X-Pad: " + b"p" * 4089 + b"\r\n")
        except OSError:
            pass
        assert _status_line(flood, 2.0) == 431
    # an honest keep-alive client is served twice on one connection
    conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=5)
    for _ in range(2):
        conn.request("GET", "/healthz", headers={"X-Pad": "p" * 8000})
        r = conn.getresponse()
        assert r.read() and r.status == 200
    conn.close()


def test_connections_beyond_the_limit_get_503(app):
    held = [app.raw(b"") for _ in range(EDGES["max_connections"])]
    try:
        time.sleep(0.2)
        assert app.request("GET", "/healthz")[0] == 503
    finally:
        for s in held:
            s.close()
    deadline = time.monotonic() + 5
    while app.request("GET", "/healthz")[0] != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def _stream(app: Served, path: str, forwarded: str | None = None,
            bearer: bool = False) -> tuple[int, socket.socket]:
    head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
    if forwarded:
        head += f"X-Forwarded-For: {forwarded}\r\n"
    if bearer:
        head += f"Authorization: Bearer {TOKEN}\r\n"
    sock = app.raw((head + "\r\n").encode())
    return _status_line(sock), sock


def _wait_streams(app: Served, n: int) -> None:
    deadline = time.monotonic() + 5
    while app.context.requests.sse_clients != n:
        assert time.monotonic() < deadline, app.context.requests.sse_clients
        time.sleep(0.05)


def test_one_link_cannot_take_every_stream(app, sim):
    access = app.context.access
    a, b, *rest = sim["ids"]
    link_a = f"/api/meters/{a}/stream?sig={access.sign(a)}"
    held = []
    try:
        for _ in range(EDGES["sse_per_link"]):
            status, sock = _stream(app, link_a)
            held.append(sock)
            assert status == 200
        status, sock = _stream(app, link_a)
        sock.close()
        assert status == 429
        # another household, the fleet stream and the fleet page still work
        status, sock = _stream(app, f"/api/meters/{b}/stream?sig={access.sign(b)}")
        held.append(sock)
        assert status == 200
        status, sock = _stream(app, "/api/fleet/stream", bearer=True)
        held.append(sock)
        assert status == 200
        assert app.bearer("/fleet") == 200 and app.bearer("/api/fleet/summary") == 200
        # the client address has its own cap (8 here): a ninth stream from it gets 429
        for sid in rest[:3]:
            status, sock = _stream(app, f"/api/meters/{sid}/stream?sig={access.sign(sid)}")
            held.append(sock)
            assert status == 200
        sid = rest[3]
        status, sock = _stream(app, f"/api/meters/{sid}/stream?sig={access.sign(sid)}")
        sock.close()
        assert status == 429
    finally:
        for s in held:
            s.close()
    _wait_streams(app, 0)   # every slot comes back when its client leaves


def test_a_burst_of_streams_never_exceeds_the_global_cap(app, sim):
    """Twenty households, each its own address and link, ask at the same instant: exactly
    the cap (10) get a stream (the slot is taken before the next request can check)."""
    access = app.context.access
    socks = [socket.create_connection(("127.0.0.1", app.port), timeout=5) for _ in range(20)]
    try:
        for i, (sock, sid) in enumerate(zip(socks, sim["ids"][10:30], strict=True)):
            sock.sendall(f"GET /api/meters/{sid}/stream?sig={access.sign(sid)} HTTP/1.1\r\n"
                         f"Host: 127.0.0.1\r\nX-Forwarded-For: 10.0.0.{i + 1}\r\n\r\n".encode())
        statuses = [_status_line(s) for s in socks]
        assert statuses.count(200) == EDGES["sse_max_clients"], statuses
        assert set(statuses) == {200, 503}
        assert app.context.requests.sse_clients == EDGES["sse_max_clients"]
    finally:
        for s in socks:
            s.close()
    _wait_streams(app, 0)


# ---- input
def test_non_ascii_digits_are_400_not_500(app, sim):
    sid = sim["ids"][0]
    for path in (f"/api/meters/{sid}/windows?utility=gas&window=%C2%B2",
                 "/api/meters?q=a&limit=%C2%B2"):
        for headers in ({}, {"Authorization": f"Bearer {TOKEN}"}):
            status, _, body = app.request("GET", path, headers)
            assert status == 400, (path, status, body[:200])
            assert b"Traceback" not in body and json.loads(body)["error"]


# ---- sessions
def test_sessions_are_random_expire_and_sign_out_revokes(app):
    one, two = app.login(), app.login()
    assert one[0] == two[0] == 303
    cookies = [re.search(rf"{COOKIE}=([^;]+)", r[1]["set-cookie"]).group(1) for r in (one, two)]
    assert cookies[0] != cookies[1] and all(len(c) >= 40 for c in cookies)
    assert "max-age" in one[1]["set-cookie"].lower()
    assert "secure" not in one[1]["set-cookie"].lower()      # plain http, no proxy
    assert "strict-transport-security" not in one[1]
    jar = {"Cookie": f"{COOKIE}={cookies[0]}"}
    assert app.request("GET", "/api/fleet/summary", jar)[0] == 200
    origin = {"Origin": f"http://127.0.0.1:{app.port}"}
    assert app.request("POST", "/logout", {**jar, **origin})[0] == 303
    assert app.request("GET", "/api/fleet/summary", jar)[0] == 403     # revoked
    status, headers, _ = app.request("GET", "/fleet", jar)
    assert status == 303 and headers["location"] == "/login"
    other = {"Cookie": f"{COOKIE}={cookies[1]}"}                      # the other session lives
    assert app.request("GET", "/api/fleet/summary", other)[0] == 200
    sessions = app.context.access.sessions
    ttl, sessions.ttl = sessions.ttl, 0.3
    try:
        short = re.search(rf"{COOKIE}=([^;]+)", app.login()[1]["set-cookie"]).group(1)
        assert app.request("GET", "/api/fleet/summary", {"Cookie": f"{COOKIE}={short}"})[0] == 200
        time.sleep(0.4)
        assert app.request("GET", "/api/fleet/summary", {"Cookie": f"{COOKIE}={short}"})[0] == 403
    finally:
        sessions.ttl = ttl


def test_cross_site_posts_are_refused(app):
    body = f"token={TOKEN}".encode()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for bad in ({"Origin": "http://evil.example"}, {"Origin": "null"},
                {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
                {"Origin": f"http://127.0.0.1:{app.port + 1}"},
                {"Sec-Fetch-Site": "cross-site"}):
        status, headers, _ = app.request("POST", "/login", {**form, **bad}, body)
        assert status == 403 and "set-cookie" not in headers, bad
    cookie = re.search(rf"{COOKIE}=([^;]+)", app.login()[1]["set-cookie"]).group(1)
    jar = {"Cookie": f"{COOKIE}={cookie}"}
    assert app.request("POST", "/logout", {**jar, "Origin": "http://evil.example"})[0] == 403
    assert app.request("GET", "/api/fleet/summary", jar)[0] == 200      # still signed in


def test_only_allowed_hosts_are_served(app):
    assert app.request("GET", "/healthz", {"Host": "evil.example"})[0] == 400
    assert app.request("GET", "/healthz", {"Host": f"localhost:{app.port}"})[0] == 200
    assert app.request("GET", "/healthz", {"Host": f"[::1]:{app.port}"})[0] == 200
    settings = Settings.from_env("127.0.0.1", env={"AUTH_DASHBOARD_ALLOWED_HOSTS": "dash.example"})
    assert settings.allowed_hosts == ("dash.example",)
    assert "[::1]" in Settings.from_env("::1", env={}).allowed_hosts
    out = io.StringIO()
    serve.warn_if_exposed("127.0.0.1", Settings.from_env("127.0.0.1", env={}), False, out)
    assert out.getvalue() == ""
    serve.warn_if_exposed("0.0.0.0", Settings.from_env("0.0.0.0", env={}), False, out)
    line = out.getvalue().strip()
    assert line.count("\n") == 0 and "warning" in line and "AUTH_DASHBOARD_ALLOWED_HOSTS" in line


def _tls_files(folder: Path) -> tuple[str, str]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return str(cert), str(key)


def test_hsts_and_secure_cookies_over_tls_and_behind_a_tls_proxy(sim, tmp_path):
    proxied = Served(_context(sim, behind_tls_proxy=True))
    try:
        status, headers = proxied.login()
        assert status == 303 and "; secure" in headers["set-cookie"].lower()
        assert headers["strict-transport-security"].startswith("max-age=")
    finally:
        proxied.stop()
    cert, key = _tls_files(tmp_path)
    tls = Served(_context(sim), certfile=cert, keyfile=key)
    try:
        conn = http.client.HTTPSConnection("127.0.0.1", tls.port, timeout=10,
                                           context=ssl._create_unverified_context())
        conn.request("POST", "/login", body=f"token={TOKEN}",
                     headers={"Origin": f"https://127.0.0.1:{tls.port}",
                              "Content-Type": "application/x-www-form-urlencoded"})
        r = conn.getresponse()
        r.read()
        assert r.status == 303 and "; secure" in r.getheader("set-cookie").lower()
        assert r.getheader("strict-transport-security")
        conn.close()
    finally:
        tls.stop()


# ---- audit and links made on demand
def test_sign_ins_sign_outs_and_links_are_audited_without_secrets(app, sim):
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda r: records.append(r.getMessage())
    audit.LOG.addHandler(handler)
    audit.LOG.setLevel(logging.INFO)
    try:
        status, headers = app.login()
        cookie = re.search(rf"{COOKIE}=([^;]+)", headers["set-cookie"]).group(1)
        jar = {"Cookie": f"{COOKIE}={cookie}"}
        bad = app.request("POST", "/login", {"Content-Type": "application/x-www-form-urlencoded"},
                          b"token=wrong-guess-wrong-guess")
        assert bad[0] == 403
        # a search lists meters and signs nothing
        sid = sim["ids"][5]
        status, _, body = app.request("GET", f"/api/meters?q={sid[:4]}&limit=50", jar)
        hits = json.loads(body)["meters"]
        assert status == 200 and hits and all("sig=" not in m["link"] for m in hits)
        assert not any("link" in r for r in records)
        # following one result's link signs one link for that meter and opens its page
        link = next(m["link"] for m in hits if m["service_id"] == sid)
        status, headers, _ = app.request("GET", link, jar)
        signed = headers["location"]
        assert status == 303 and signed.startswith(f"/household/{sid}?sig=")
        assert app.request("GET", signed)[0] == 200
        assert app.request("GET", link)[:2][0] == 303    # no credentials: to the sign-in
        assert app.request("GET", link)[1]["location"] == "/login"
        assert app.request("POST", "/logout",
                           {**jar, "Origin": f"http://127.0.0.1:{app.port}"})[0] == 303
    finally:
        audit.LOG.removeHandler(handler)
    text = "\n".join(records)
    assert "operator signed in from 127.0.0.1" in text
    assert "operator sign-in refused" in text
    assert f"household link made for {sid}" in text and text.count("household link made") == 1
    assert "operator signed out from 127.0.0.1" in text
    for secret in (TOKEN, cookie, "wrong-guess", signed.split("sig=")[1]):
        assert secret not in text


# ---- secrets
def test_the_link_secret_is_random_kept_0600_and_at_least_32_bytes(tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    first = link_secret(env)
    kept = tmp_path / "auth-kappa" / "dashboard-secret"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600 and len(first) >= 32
    assert link_secret(env) == first                         # made once, then kept
    assert link_secret({"XDG_CONFIG_HOME": str(tmp_path / "b")}) != first   # random
    # not derived from the operator token: two tokens, one secret
    a = Access.from_env(env=env, token="operator-token-one-0123")
    b = Access.from_env(env=env, token="operator-token-two-0123")
    assert a.secret == b.secret == first
    kept.chmod(0o644)
    with pytest.raises(UserError, match="chmod 600"):
        link_secret(env)
    with pytest.raises(UserError, match="at least 32 bytes"):
        Access.from_env(env={"AUTH_DASHBOARD_SECRET": "x" * 31}, token=TOKEN)


def test_the_operator_token_is_shown_only_when_generated_and_never_in_a_log(sim, tmp_path):
    """A real `auth-kappa dashboard` with its output to a log file: the generated token is
    not in the log but in a 0600 file, and it signs in; a token from the environment is
    never printed."""
    port, log = free_port(), tmp_path / "dashboard.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_DASHBOARD_",
                                                                     "AUTH_OPERATOR"))}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "auth_kappa.cli.main", "dashboard",
                                 "--embedded", str(sim["dir"]), "--port", str(port)],
                                env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        kept = tmp_path / "config" / "auth-kappa" / "operator-token"
        deadline = time.monotonic() + 60
        while "Ctrl-C" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        token = kept.read_text().strip()
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600
        assert token not in log.read_text() and str(kept) in log.read_text()
        while True:   # the banner is printed just before uvicorn listens
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                conn.request("GET", "/api/fleet/summary",
                             headers={"Authorization": f"Bearer {token}"})
                break
            except ConnectionRefusedError:
                conn.close()
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        assert conn.getresponse().status == 200
        conn.close()
        secret = tmp_path / "config" / "auth-kappa" / "dashboard-secret"
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    finally:
        proc.terminate()
        proc.wait(15)
    out = io.StringIO()
    serve.announce(Access.from_env(env=SECRET_ENV, token=TOKEN), "127.0.0.1", 8000, out)
    assert TOKEN not in out.getvalue() and "AUTH_OPERATOR_TOKEN" in out.getvalue()


# ---- the read-only Redis user
def _cli(*args: str, env: dict, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "auth_kappa.cli.main", "dashboard", *args],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, env=env,
                          input=stdin)


def test_read_only_user_password_never_on_the_command_line_or_screen(tmp_path, config):
    user, password = f"sec{os.getpid()}", f"pw-{os.urandom(12).hex()}"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AUTH_DASHBOARD_")},
           "AUTH_STACK_DIR": str(tmp_path / "stack"), "AUTH_REDIS_URL": config.redis_url}
    file = tmp_path / "dash.url"
    admin = redis.Redis.from_url(config.redis_url)
    try:
        argv = _cli("create-redis-user", "--user", user, "--password", password, env=env)
        assert argv.returncode != 0 and len(argv.stderr.strip().splitlines()) == 1
        assert "AUTH_DASHBOARD_REDIS_PASSWORD" in argv.stderr
        made = _cli("create-redis-user", "--user", user, "--url-file", str(file),
                    env={**env, "AUTH_DASHBOARD_REDIS_PASSWORD": password})
        assert made.returncode == 0, made.stderr
        assert password not in made.stdout + made.stderr and str(file) in made.stdout
        assert stat.S_IMODE(file.stat().st_mode) == 0o600
        url = file.read_text().strip()
        assert urlsplit(url).password == password
        reader = redis.Redis.from_url(url)
        assert reader.get("auth:namespace") is None or True           # reads auth:*
        for command in (("DBSIZE",), ("SELECT", "1"), ("KEYS", "*"), ("SCAN", "0"),
                        ("RANDOMKEY",), ("SET", "auth:x", "1")):
            with pytest.raises(redis.exceptions.NoPermissionError):
                reader.execute_command(*command)
        reader.close()
        piped = _cli("create-redis-user", "--user", user, "--url-file", str(file),
                     "--password-stdin", env=env, stdin=password + "-2\n")
        assert piped.returncode == 0 and password + "-2" not in piped.stdout + piped.stderr
        assert urlsplit(file.read_text().strip()).password == password + "-2"
    finally:
        admin.execute_command("ACL", "DELUSER", user)
        admin.close()


def test_no_silent_fallback_to_the_writable_url_and_kept_files_must_be_private(tmp_path,
                                                                                 config):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AUTH_DASHBOARD_")},
           **SECRET_ENV, "AUTH_STACK_DIR": str(tmp_path / "stack"),
           "AUTH_REDIS_URL": config.redis_url, "AUTH_OPERATOR_TOKEN": TOKEN}
    run = _cli("--port", str(free_port()), env=env)
    lines = run.stderr.strip().splitlines()
    assert run.returncode != 0 and len(lines) == 1, run.stderr
    assert "--allow-writable-redis" in lines[0] and "create-redis-user" in lines[0]
    mine = Config.load(env=env)
    assert serve.dashboard_url(mine, env={}, allow_writable=True) == config.redis_url
    kept = acl.stack_user_file(mine)
    kept.parent.mkdir(parents=True)
    kept.write_text(acl.user_url(config.redis_url, "dashboard", "pw") + "\n")
    kept.chmod(0o644)
    with pytest.raises(UserError, match=r"chmod 600") as err:
        serve.dashboard_url(mine, env={})
    assert "pw" not in str(err.value).replace(str(kept), "")
    kept.chmod(0o600)
    assert serve.dashboard_url(mine, env={}) == kept.read_text().strip()
