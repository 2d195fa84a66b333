"""Module fixtures: a simulated fleet and `auth-kappa dashboard --embedded` serving it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from tests.support.browser import ROOT, start_server

TOKEN = "test-operator-token-0123456789"
SECRET = "test-household-link-secret-0123456789abcdef"   # >= 32 bytes
SECRET_ENV = {"AUTH_DASHBOARD_SECRET": SECRET}   # the servers below sign with it
SIM = ["--meters", "120", "--duration", "20m", "--seed", "9", "--duplicate-fraction", "0.02",
       "--malformed-fraction", "0.005"]


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("dash-sim")
    run = subprocess.run([sys.executable, "-m", "auth_kappa.cli.main", "simulate", *SIM,
                          "--out", str(out), "--quiet"], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr
    return {"dir": out, "manifest": json.loads((out / "manifest.json").read_text()),
            "registry": pd.read_parquet(out / "registry.parquet")}


@pytest.fixture(scope="module")
def server(sim, tmp_path_factory):
    log = tmp_path_factory.mktemp("dash-log") / "dashboard.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTH_DASHBOARD_")}
    env |= SECRET_ENV
    s = start_server(["--embedded", str(sim["dir"])], env, log, TOKEN)
    yield s
    s.stop()
