"""Continuous-flow leaks (water): every hour of the last `hours` at or above a flow.

Fed by final hourly windows of water meters. A missing hour (no reading) breaks the run:
a leak needs flow measured in every hour. The alert opens when the run reaches `hours`
(start = the run's first hour) and closes at the first hour below the flow (or the first
hour without readings). State is kept per source partition, like gaps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from auth_kappa.errors import UserError
from auth_kappa.insights.alerts import Alert
from auth_kappa.topology.keys import uuid_text
from auth_kappa.topology.schema import METER_TYPES
from auth_kappa.topology.window_table import Rows

HOUR = 3600


def leak_flows(text: str) -> dict[str, float]:
    """AUTH_LEAK_FLOW: "9.5" (every meter type), or per type, "9.5,business=14" (a bare
    number is the default for the types not named)."""
    out: dict[str, float] = {}
    for item in filter(None, (x.strip() for x in str(text).split(","))):
        kind, _, value = item.rpartition("=")
        kind = kind.strip() or "*"
        if kind != "*" and kind not in METER_TYPES:
            raise UserError(f"AUTH_LEAK_FLOW: unknown meter type {kind!r}; use "
                            f"{' or '.join(METER_TYPES)}, e.g. 9.5,business=14")
        try:
            flow = float(value)
        except ValueError:
            flow = -1.0
        if not flow > 0:
            raise UserError(f"AUTH_LEAK_FLOW: {item!r} needs a positive number of gallons "
                            "an hour, e.g. 9.5 or business=14")
        out[kind] = flow
    return out


@dataclass
class LeakDetector:
    flow: float = 9.5          # gallons per hour, every hour (meter types not in flows)
    hours: int = 24
    flows: Mapping[str, float] = field(default_factory=dict)   # meter type -> flow
    types: dict[str, str] = field(default_factory=dict)        # service_id -> its type
    runs: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    # service_id -> (run start, last hour start, lowest hourly total in the run)
    part: dict[str, int] = field(default_factory=dict)
    open: dict[str, Alert] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)     # runs changed since changes()

    def partition_of(self, sid: str) -> int | None:
        return self.part.get(sid)

    def observe(self, final: Rows) -> list[Alert]:
        if not len(final):
            return []
        sids = uuid_text(final.k0, final.k1).astype(str)
        parts = final.part if final.part is not None else np.full(len(final), -1)
        kinds = final.mtype if final.mtype is not None else np.full(len(final), -1)
        order = np.lexsort((final.window_start, sids))
        out: list[Alert] = []
        for i in order:
            sid = str(sids[i])
            self.part[sid] = int(parts[i])
            if kinds[i] >= 0:
                self.types[sid] = METER_TYPES[kinds[i]]
            out += self._hour(sid, float(final.window_start[i]), float(final.sum[i]))
        return out

    def _hour(self, sid: str, start: float, total: float) -> list[Alert]:
        run = self.runs.get(sid)
        if run is not None and start <= run[1]:
            return []    # an hour seen already
        out: list[Alert] = []
        if run is not None and start != run[1] + HOUR:   # an hour without readings
            out += self._close(sid, run[1] + HOUR)
            run = None
        self.dirty.add(sid)
        flow = self.flow_of(sid)
        if total < flow:
            self.runs.pop(sid, None)
            return out + self._close(sid, start)
        run = (run[0], start, min(run[2], total)) if run else (start, start, total)
        self.runs[sid] = run
        if sid in self.open:
            self.open[sid].value = run[2]
        elif (run[1] - run[0]) // HOUR + 1 >= self.hours:
            self.open[sid] = alert = Alert(
                "leak", "water", sid, run[0], None, run[2],
                f"at least {flow:g} gallons in every hour for {self.hours} h or more")
            out.append(alert)
        return out

    def flow_of(self, sid: str) -> float:
        """The meter's threshold: its type's (as its readings say), else the default."""
        return self.flows.get(self.types.get(sid, ""), self.flow)

    def _close(self, sid: str, end: float) -> list[Alert]:
        alert = self.open.pop(sid, None)
        if alert is None:
            return []
        alert.end = end
        return [alert]

    def forget(self, partitions: set[int]) -> None:
        gone = [s for s, p in self.part.items() if p in partitions]
        for sid in gone:
            for table in (self.runs, self.part, self.open, self.types):
                table.pop(sid, None)
            self.dirty.discard(sid)
