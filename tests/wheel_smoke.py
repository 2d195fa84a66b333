"""Smoke check of an installed wheel, run by `make wheel-check` with a fresh venv's python
from a folder outside the source tree: the CLI, the embedded engine, and the dashboard
serving its templates and static files from the installed package.

Not a pytest module (a clean venv has no pytest): it exits non-zero on the first failure.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def main() -> int:
    import auth_kappa
    from auth_kappa import Engine

    where = Path(auth_kappa.__file__).resolve()
    assert Path(sys.prefix).resolve() in where.parents, f"not the installed package: {where}"
    cli = Path(sys.executable).with_name("auth-kappa")
    tmp = Path(tempfile.mkdtemp(prefix="wheel-smoke-"))
    sim = tmp / "sim"
    run = subprocess.run([str(cli), "simulate", "--meters", "20", "--duration", "5m",
                          "--seed", "1", "--out", str(sim), "--quiet"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr

    eng = Engine.embedded(window=["1m", "1h"], grace="30s")
    eng.ingest(sim)
    eng.flush()
    states = eng.windows(level="state", utility="electricity", window="1m")
    assert len(states) and str(states["window_start"].dtype) == "datetime64[ns, UTC]"
    assert set(states["unit"]) == {"kWh"} and eng.stats.accepted > 0
    print(f"wheel-check: engine ok ({eng.stats.accepted:,} readings, {len(states)} state "
          "windows)")

    port = _free_port()
    env = {**os.environ, "HOME": str(tmp), "AUTH_OPERATOR_TOKEN": "wheel-check-token-0123456789",
           "AUTH_DASHBOARD_SECRET": "wheel-check-secret-" + "x" * 32}
    server = subprocess.Popen([str(cli), "dashboard", "--embedded", str(sim), "--port",
                               str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        css = _get(f"{base}/static/app.css", server)
        assert len(css) > 100, "static/app.css is empty"
        page = _get(f"{base}/login", server)
        assert "<html" in page.lower(), "the login template did not render"
    finally:
        server.terminate()
        server.wait(10)
    print("wheel-check: dashboard serves its templates and static files")
    return 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, server: subprocess.Popen, wait: float = 60.0) -> str:
    deadline = time.monotonic() + wait
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return resp.read().decode()
        except OSError:
            if server.poll() is not None:
                raise SystemExit(f"wheel-check: dashboard exited: {server.stderr.read()}") \
                    from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


if __name__ == "__main__":
    sys.exit(main())
