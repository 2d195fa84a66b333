"""The insights stage: detectors fed by one utility's final windows at a time."""

from __future__ import annotations

from dataclasses import dataclass, field

from auth_kappa.insights.alerts import Alert
from auth_kappa.insights.gaps import GapDetector
from auth_kappa.insights.leaks import HOUR, LeakDetector
from auth_kappa.topology.processor import Slot, Topology
from auth_kappa.topology.schema import UTILITIES
from auth_kappa.topology.window_table import Rows


@dataclass
class InsightRules:
    gap_after: float = 300.0     # AUTH_GAP_AFTER
    heartbeat: float = 5.0       # a meter's reading interval (missed readings of a gap)
    leak_flow: float = 1.0       # gallons in every hour (AUTH_LEAK_FLOW)
    leak_hours: int = 24


@dataclass
class Insights:
    """Alerts from final windows; every alert opened or closed so far in `alerts`."""

    rules: InsightRules = field(default_factory=InsightRules)
    alerts: list[Alert] = field(default_factory=list)

    def __post_init__(self) -> None:
        r = self.rules
        self.gaps = {u: GapDetector(u, r.gap_after, r.heartbeat) for u in UTILITIES}
        self.leaks = LeakDetector(r.leak_flow, r.leak_hours)
        self._known: set[int] = set()   # alerts already listed (closing one mutates it)

    def observe(self, topology: Topology, utility: str, final: dict[Slot, Rows],
                ended: bool = False) -> list[Alert]:
        """One step's final windows of `utility`; `ended`: the input is over (no gap opens
        past a partition's last reading)."""
        events = self.gaps[utility].observe(final.get((utility, "meter", topology.finest.size),
                                                      Rows.empty()))
        hourly = final.get((utility, "meter", HOUR))
        if utility == "water" and hourly is not None:
            events += self.leaks.observe(hourly)
        wm = topology.watermarks[utility]
        upto = {p: wm.high(p) if ended else topology.final_cut(topology.finest, wm.high(p))
                for p in wm.partitions()}
        events += self.gaps[utility].advance(upto)
        for alert in events:
            if id(alert) not in self._known:
                self._known.add(id(alert))
                self.alerts.append(alert)
        return events
