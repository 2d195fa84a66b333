"""Real-browser fixtures: Debian's Chromium driven by Playwright, and a dashboard subprocess.

Playwright's own browser download cannot work here, so the tests launch
/usr/bin/chromium. When it is missing and we are root, the session installs it with
apt-get (CI on a fresh machine); otherwise it fails with the one command that fixes it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def ensure_chromium() -> str:
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(f"{CHROMIUM} is missing; run `sudo apt-get install -y chromium`")
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                             env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        if run.returncode != 0:
            pytest.fail(f"`{' '.join(cmd)}` failed: {run.stderr.strip()[-500:]}; install "
                        "Chromium by hand: apt-get install -y chromium")
    return CHROMIUM


_SHARED: dict[str, object] = {"users": 0}


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One Chromium per test module, closed after it: while Playwright's sync API is open it
    keeps an event loop running in this thread, and later tests need asyncio.run.
    Reference-counted, because Playwright allows only one sync instance per thread."""
    from playwright.sync_api import sync_playwright

    if not _SHARED["users"]:
        path = ensure_chromium()
        _SHARED["playwright"] = sync_playwright().start()
        _SHARED["browser"] = _SHARED["playwright"].chromium.launch(executable_path=path,
                                                                   args=CHROMIUM_ARGS)
    _SHARED["users"] += 1
    try:
        yield _SHARED["browser"]
    finally:
        _SHARED["users"] -= 1
        if not _SHARED["users"]:
            _SHARED.pop("browser").close()
            _SHARED.pop("playwright").stop()


@dataclass
class Page:
    """A Playwright page that records console errors and any request leaving 127.0.0.1."""

    page: object
    errors: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def new_page(browser: object, width: int = 1280, height: int = 900) -> Page:
    context = browser.new_context(viewport={"width": width, "height": height})
    pg = Page(context.new_page())

    def route(r: object) -> None:
        url = r.request.url
        if url.startswith(("http://127.0.0.1", "data:", "about:")):
            r.continue_()
        else:  # the pages must work offline: nothing may come from elsewhere
            pg.external.append(url)
            r.abort()

    pg.page.route("**/*", route)
    pg.page.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
    pg.page.on("pageerror", lambda e: pg.errors.append(str(e)))
    return pg


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """`auth-kappa dashboard ...` in a subprocess, on a free port."""

    proc: subprocess.Popen
    port: int
    token: str
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, token: str | None = None, headers: dict | None = None
            ) -> tuple[int, bytes, Message]:
        """(status, body, headers); headers look up case-insensitively."""
        req = urllib.request.Request(self.base + path, headers=headers or {})
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read(), r.headers
        except urllib.error.HTTPError as e:
            return e.code, e.read(), e.headers

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def start_server(args: list[str], env: dict[str, str], log: Path, token: str,
                 timeout: float = 120) -> Server:
    port = free_port()
    out = open(log, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "auth_kappa.cli.main", "dashboard", "--port",
                             str(port), *args], env={**env, "AUTH_OPERATOR_TOKEN": token},
                            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    server = Server(proc, port, token, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"dashboard exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if server.get("/healthz")[0] == 200:
                return server
        except OSError:
            pass
        time.sleep(0.2)
    server.stop()
    pytest.fail(f"dashboard did not answer /healthz in {timeout}s:\n{log.read_text()[-3000:]}")
