"""Start, find and stop the stack's own processes by pid file.

`down` must never touch a process that `up` did not start, so every service we
launch leaves a pid file, and only those pids are ever signalled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from auth_kappa.errors import ServiceUnavailable


def read_pid(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if is_alive(pid) else None


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours still answers kill(0); treat it as dead
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def spawn(argv: Sequence[str], *, pidfile: Path, logfile: Path, cwd: Path | None = None,
          env: dict[str, str] | None = None) -> int:
    """Start argv detached from our session, so it outlives the CLI that started it."""
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "ab") as log:
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            cwd=cwd, env=env, start_new_session=True,
        )
    pidfile.write_text(f"{proc.pid}\n")
    return proc.pid


def stop(pidfile: Path, *, timeout: float = 30.0) -> bool:
    """SIGTERM the recorded pid (its process group), SIGKILL after timeout; True if one ran."""
    pid = read_pid(pidfile)
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return False
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and is_alive(pid):
        time.sleep(0.2)
    if is_alive(pid):
        _signal_group(pid, signal.SIGKILL)
        while is_alive(pid):
            time.sleep(0.1)
    pidfile.unlink(missing_ok=True)
    return True


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # spawn() made pid a group leader; this reaches its children too
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def wait_until(check: Callable[[], bool], *, what: str, timeout: float, pid: int | None = None,
               logfile: Path | None = None) -> None:
    """Poll check() until it is true; fail early with the log's tail if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if pid is not None and not is_alive(pid):
            raise ServiceUnavailable(f"{what} exited during start-up{_tail_hint(logfile)}")
        time.sleep(0.5)
    raise ServiceUnavailable(f"{what} did not answer within {timeout:.0f}s{_tail_hint(logfile)}")


def _tail_hint(logfile: Path | None) -> str:
    if logfile is None or not logfile.exists():
        return ""
    lines = [ln for ln in logfile.read_text(errors="replace").splitlines() if ln.strip()]
    last = lines[-1][:200] if lines else ""
    return f"; see {logfile} (last line: {last})"
