"""What the machine gives a process that does no work: wake-up lateness of 20 ms timers.

    python benchmarks/sched_floor.py [auto|realtime|normal] < /dev/null   # until stdin closes

An event loop (uvloop, as the dashboard runs) sleeping 20 ms at a time; each wake's delay
past its deadline is latency no code in a served process can avoid while the cores are
shared. bench_dashboard runs it beside each phase, at the dashboard's CPU priority
(dashboards/cpu_priority.py), and reports its p99 as the floor. The delays (seconds) go
to stdout as JSON once stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import uvloop

TICK = 0.02   # 50 wakes a second: at 500 (2 ms) the probe itself slowed the rest


async def wake_delays(out: list[float], stopped: Callable[[], bool]) -> None:
    """Each wake's delay past its deadline (s) into `out`, until `stopped()`; also run
    inside bench_dashboard's load generator, beside its clients."""
    while not stopped():
        t = time.perf_counter()
        await asyncio.sleep(TICK)
        out.append(time.perf_counter() - t - TICK)


async def _lateness() -> list[float]:
    out: list[float] = []
    closed = asyncio.Event()
    asyncio.get_running_loop().add_reader(sys.stdin.fileno(), closed.set)
    await wake_delays(out, closed.is_set)
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from dashboards import cpu_priority
    cpu_priority.claim(sys.argv[1] if len(sys.argv) > 1 else "normal")
    print(json.dumps(uvloop.run(_lateness())))
