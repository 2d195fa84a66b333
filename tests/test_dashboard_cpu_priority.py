"""The serving loop's CPU priority (dashboards/cpu_priority.py): real-time where permitted,
never inherited by the threads it starts, refused in one line where it cannot be had."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

import pytest

from auth_kappa.errors import UserError
from dashboards import cpu_priority
from dashboards.context import Settings
from tests.support.browser import ROOT, free_port

FIFO_FLAGGED = os.SCHED_FIFO | os.SCHED_RESET_ON_FORK

# run in a child so the test process keeps its own policy; prints each thread's policy
CHILD = """
import json, os, resource, sys, threading
from auth_kappa.errors import UserError
from dashboards import cpu_priority
if sys.argv[1] == "unprivileged":
    resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0))
    if os.geteuid() == 0:
        os.setgroups([]); os.setgid(65534); os.setuid(65534)
out = {"auto": cpu_priority.claim("auto"), "main": os.sched_getscheduler(0)}
try:
    out["realtime"] = cpu_priority.claim("realtime")
except UserError as exc:
    out["refused"] = str(exc)
seen = {}
t = threading.Thread(target=lambda: seen.update(policy=os.sched_getscheduler(0)))
t.start(); t.join()
out["thread"] = seen["policy"]
print(json.dumps(out))
"""


def _child(mode: str) -> dict:
    run = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def _permitted() -> bool:
    return os.geteuid() == 0 or resource.getrlimit(resource.RLIMIT_RTPRIO)[0] > 0


@pytest.mark.skipif(not _permitted(), reason="needs root, CAP_SYS_NICE or RLIMIT_RTPRIO")
def test_auto_takes_real_time_for_the_serving_thread_and_not_for_threads_it_starts():
    got = _child("privileged")
    assert got["auto"].startswith("real-time (SCHED_FIFO 1)")
    assert got["main"] == FIFO_FLAGGED
    assert got["thread"] == os.SCHED_OTHER


def test_without_the_privilege_auto_serves_normal_and_realtime_refuses_in_one_line():
    got = _child("unprivileged")
    assert got["auto"].startswith("normal: real-time not permitted")
    assert "LimitRTPRIO" in got["auto"]
    assert got["main"] == os.SCHED_OTHER and got["thread"] == os.SCHED_OTHER
    assert "\n" not in got["refused"] and "refused" in got["refused"]


def test_with_real_time_throttling_off_auto_stays_normal(tmp_path):
    throttle = tmp_path / "sched_rt_runtime_us"
    throttle.write_text("-1\n")
    before = os.sched_getscheduler(0)
    said = cpu_priority.claim("auto", throttle)
    assert said.startswith("normal") and "sched_rt_runtime_us is -1" in said
    assert os.sched_getscheduler(0) == before
    with pytest.raises(UserError, match="sched_rt_runtime_us"):
        cpu_priority.claim("realtime", throttle)
    assert cpu_priority.claim("normal", throttle).startswith("normal")


def test_the_setting_is_checked():
    assert Settings.from_env(env={}).cpu_priority == "auto"
    assert Settings.from_env(env={"AUTH_DASHBOARD_CPU_PRIORITY": " Normal "}).cpu_priority \
        == "normal"
    with pytest.raises(UserError, match="one of auto, realtime, normal"):
        Settings.from_env(env={"AUTH_DASHBOARD_CPU_PRIORITY": "fast"})


def test_the_dashboard_command_says_and_sets_its_priority(tmp_path):
    """`auth-kappa dashboard` over the embedded engine: the line it prints matches the
    policy its serving (main) thread has; --cpu-priority normal leaves it alone."""
    sim = tmp_path / "sim"
    subprocess.run([sys.executable, "-m", "auth_kappa.cli.main", "simulate", "--meters", "5",
                    "--duration", "1m", "--seed", "2", "--out", str(sim), "--quiet"],
                   check=True, cwd=ROOT, timeout=300, capture_output=True)
    for flag, policy in ((["--cpu-priority", "normal"], os.SCHED_OTHER),
                         ([], FIFO_FLAGGED if _permitted() else os.SCHED_OTHER)):
        log = tmp_path / f"dash{len(flag)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "auth_kappa.cli.main", "dashboard",
                                     "--embedded", str(sim), "--port", str(free_port()),
                                     *flag], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                    env={**os.environ, "AUTH_OPERATOR_TOKEN": "t" * 32})
        try:
            deadline = time.monotonic() + 60
            while "Ctrl-C" not in log.read_text():
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            line = next(x for x in log.read_text().splitlines() if "CPU priority" in x)
            assert os.sched_getscheduler(proc.pid) == policy, line
            assert ("real-time" in line.split(":", 2)[1]) == (policy == FIFO_FLAGGED), line
        finally:
            proc.terminate()
            proc.wait(15)
