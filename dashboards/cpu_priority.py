"""The serving loop's CPU priority: reads that do not wait for a core behind the workers.

On a host the dashboard shares with workers, Kafka and Redis, the cores are busy most of
the time under ingest, and a request that arrives while they are has to wait its turn
behind batch work: measured at 2x ingest on 2 cores (benchmarks/README.md), the serving
loop was runnable but not running ~150 ms a second and the p99 was 3x its idle value,
though the dashboard's own code answered within 5 ms. A shorter CFS/EEVDF slice did not
change that; a real-time policy did (p99 14 -> 4.9 ms, the worker still keeping up).

So the serving thread asks for SCHED_FIFO at the lowest real-time priority, with
SCHED_RESET_ON_FORK: threads and processes it starts later (exports, file reads) run at
the normal policy. Its work is bounded per request and per change notice, and the
kernel's real-time throttling (kernel.sched_rt_runtime_us) keeps a share of every core
for the rest even if it were not; with that throttling switched off, `auto` stays normal.

Modes (AUTH_DASHBOARD_CPU_PRIORITY or --cpu-priority):
- auto (default): real-time when the process may (root, CAP_SYS_NICE, or RLIMIT_RTPRIO
  of 1 or more, e.g. LimitRTPRIO=1 under systemd), else normal, said in one line;
- realtime: real-time or refuse to start;
- normal: leave the scheduler alone.
"""

from __future__ import annotations

import os
from pathlib import Path

from auth_kappa.errors import UserError

MODES = ("auto", "realtime", "normal")
PRIORITY = 1   # the lowest real-time priority: kernel threads and IRQ threads stay above
THROTTLE = Path("/proc/sys/kernel/sched_rt_runtime_us")
GRANT = "grant CAP_SYS_NICE or RLIMIT_RTPRIO >= 1 (systemd: LimitRTPRIO=1)"


def parse_mode(text: str | None) -> str:
    mode = (text or "auto").strip().lower()
    if mode not in MODES:
        raise UserError(f"AUTH_DASHBOARD_CPU_PRIORITY must be one of {', '.join(MODES)}, "
                        f"not {text!r}")
    return mode


def claim(mode: str, throttle: Path = THROTTLE) -> str:
    """Sets the calling thread's policy for `mode`; returns what it got, in one line.
    Raises UserError when `realtime` cannot be had."""
    if mode == "normal":
        return "normal (AUTH_DASHBOARD_CPU_PRIORITY=normal)"
    why = _refusal(throttle)
    if why is None:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK,
                                  os.sched_param(PRIORITY))
            return f"real-time (SCHED_FIFO {PRIORITY}); threads it starts run normal"
        except PermissionError:
            why = f"not permitted: {GRANT}"
    if mode == "realtime":
        raise UserError(f"dashboard: real-time CPU priority refused ({why})")
    return (f"normal: real-time {why}; under ingest on shared cores, reads may wait "
            "for a core behind the workers")


def _refusal(throttle: Path) -> str | None:
    """Why real-time is not even tried, or None."""
    if not hasattr(os, "sched_setscheduler") or not hasattr(os, "SCHED_RESET_ON_FORK"):
        return "is not available on this system"
    try:
        if int(throttle.read_text()) < 0:
            return ("is not used: kernel.sched_rt_runtime_us is -1 (no real-time "
                    "throttling, so nothing would keep a core for the rest)")
    except (OSError, ValueError):
        pass
    return None
