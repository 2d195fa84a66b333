"""Send messages when their simulated time comes: realtime, N times faster, or at once."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from auth_kappa.errors import UserError
from simulators.faults import Emission

_FACTOR = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*x\s*$", re.IGNORECASE)


def parse_pace(text: str) -> float | None:
    """'max' -> None (no sleeping), 'realtime' -> 1.0, '10x' -> 10.0."""
    t = str(text).strip().lower()
    if t == "max":
        return None
    if t == "realtime":
        return 1.0
    m = _FACTOR.match(t)
    if not m or float(m.group(1)) <= 0:
        raise UserError(f"--pace: cannot read {text!r}; use realtime, max or a speed-up like 10x")
    return float(m.group(1))


class Pacer:
    """Sleeps until wall clock = start of run + (simulated time - sim_start) / factor."""

    def __init__(self, factor: float, sim_start: float,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.factor = factor
        self.sim_start = sim_start
        self._clock = clock
        self._sleep = sleep
        self._wall_start = clock()

    def wait(self, sim_ts: float) -> None:
        delay = self._wall_start + (sim_ts - self.sim_start) / self.factor - self._clock()
        if delay > 0:
            self._sleep(delay)


def paced(chunks: Iterable[dict[str, Emission]], pacer: Pacer | None) -> Iterator[Emission]:
    """Emissions in send order; with a pacer, split per due time and wait for each.

    Due times come from each message's event time (emit_ts), so the three utilities of
    one heartbeat go out together rather than one utility a whole chunk ahead.
    """
    for chunk in chunks:
        if pacer is None:
            yield from (e for e in chunk.values() if len(e))
            continue
        due = np.unique(np.concatenate([e.emit_ts for e in chunk.values()]))
        for ts in due:
            pacer.wait(float(ts))
            for e in chunk.values():
                lo = int(np.searchsorted(e.emit_ts, ts, "left"))
                hi = int(np.searchsorted(e.emit_ts, ts, "right"))
                if hi > lo:
                    yield e.slice(lo, hi)
