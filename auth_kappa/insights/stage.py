"""The insights stage: detectors fed by one utility's final windows at a time, with their
state kept per source partition so a live runtime persists it in the checkpoint of the
partition it belongs to (and reloads exactly what it owns)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from auth_kappa.insights.alerts import Alert
from auth_kappa.insights.bills import QUARTER, DailyLedger, Day
from auth_kappa.insights.estimates import Estimates
from auth_kappa.insights.gaps import GapDetector
from auth_kappa.insights.leaks import HOUR, LeakDetector, leak_flows
from auth_kappa.insights.meters import MeterIndex
from auth_kappa.insights.spikes import SpikeDetector
from auth_kappa.insights.tariff import Tariff
from auth_kappa.topology.processor import Slot, Topology
from auth_kappa.topology.schema import UTILITIES
from auth_kappa.topology.window_table import Rows

if TYPE_CHECKING:
    from auth_kappa.config import Config


SPIKES = ("electricity", "gas")   # water's hours only feed estimates


@dataclass
class InsightRules:
    gap_after: float = 300.0     # AUTH_GAP_AFTER
    heartbeat: float = 5.0       # a meter's reading interval (missed readings of a gap)
    leak_flow: float = 9.5       # gallons in every hour (AUTH_LEAK_FLOW; config.py says why)
    leak_flows: dict[str, float] = field(default_factory=dict)   # per meter type
    leak_hours: int = 24
    tariff: str = ""             # AUTH_TARIFF: a TOML file; empty: the example tariff

    @classmethod
    def from_config(cls, config: Config) -> InsightRules:
        flows = leak_flows(config.leak_flow)
        return cls(gap_after=config.gap_after, leak_flow=flows.pop("*", cls.leak_flow),
                   leak_flows=flows, tariff=config.tariff)


@dataclass
class Changes:
    """One partition's insight state changed since the last checkpoint: None deletes."""

    last: dict[str, str | None] = field(default_factory=dict)     # gaps: last reading (s)
    runs: dict[str, str | None] = field(default_factory=dict)     # leaks: start,last,min
    alerts: dict[str, str | None] = field(default_factory=dict)   # open: kind:sid -> JSON
    closed: list[tuple[float, str]] = field(default_factory=list)  # (end, JSON) history
    days: dict[str, bytes | None] = field(default_factory=dict)   # open day (bills.Day)
    past_days: list[tuple[str, str, bytes]] = field(default_factory=list)  # sid, date, Day
    sketches: dict[tuple[str, str], bytes] = field(default_factory=dict)  # (date,
    # "<state>:<type>") -> that partition's KLL sketch of the day's totals


@dataclass
class Insights:
    """Alerts from final windows. `keep_all`: every alert stays listed in `alerts` (the
    embedded engine); a live runtime keeps only what it has not checkpointed."""

    rules: InsightRules = field(default_factory=InsightRules)
    keep_all: bool = True
    alerts: list[Alert] = field(default_factory=list)
    # a live runtime writes each meter's last reading only when the finest windows Redis
    # keeps may not hold it (AUTH_GAP_AFTER beyond their retention); see learn_finest
    persist_last: bool = False

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        r = self.rules
        self.meters = MeterIndex()   # a row per meter, for the detectors' array state
        self.gaps = {u: GapDetector(u, r.gap_after, r.heartbeat, self.meters)
                     for u in UTILITIES}
        self.leaks = LeakDetector(r.leak_flow, r.leak_hours, r.leak_flows)
        # hourly history of every meter; spike alerts for electricity and gas
        self.spikes = {u: SpikeDetector(u) for u in UTILITIES}
        self.estimates = Estimates(r.heartbeat, keep=self.keep_all)
        tariff = Tariff.load(r.tariff or None)
        self.ledgers = {u: DailyLedger(u, tariff, self.keep_all, self.meters) for u in UTILITIES}
        self._known: set[int] = set()   # alerts already listed (closing one mutates it)
        self._events: dict[str, list[Alert]] = {u: [] for u in UTILITIES}
        if not self.keep_all:
            self.alerts = []

    def observe(self, topology: Topology, utility: str, final: dict[Slot, Rows],
                ended: bool = False) -> list[Alert]:
        """One step's final windows of `utility`; `ended`: the input is over (no gap opens
        past a partition's last reading). Returns the alerts opened or closed."""
        finest = final.get((utility, "meter", topology.finest.size), Rows.empty())
        events = self.gaps[utility].observe(finest)
        if utility in self.ledgers and QUARTER % topology.finest.size == 0:
            self.ledgers[utility].observe(finest)
        hourly = final.get((utility, "meter", HOUR))
        if utility == "water" and hourly is not None:
            events += self.leaks.observe(hourly)
        for alert, before, after in self.gaps[utility].bounds:   # before this hour is
            self.estimates.fill(alert, before, after, self.spikes[utility])   # learned
        self.gaps[utility].bounds = []
        if hourly is not None:
            events += self.spikes[utility].observe(hourly, alert=utility in SPIKES)
        wm = topology.watermarks[utility]
        upto = {p: wm.high(p) if ended else topology.final_cut(topology.finest, wm.high(p))
                for p in wm.partitions()}
        events += self.gaps[utility].advance(upto)
        # quarters every partition has made final (all of them at the end of the input)
        self.ledgers[utility].advance(
            {p: np.inf for p in upto} if ended or wm.ended else upto)
        if ended and utility in self.ledgers:
            self.ledgers[utility].end_of_input()
        self._events[utility] += events
        if self.keep_all:
            for alert in events:
                if id(alert) not in self._known:
                    self._known.add(id(alert))
                    self.alerts.append(alert)
        return events

    # ---- persistence (live runtime)
    def changes(self, utility: str) -> dict[int, Changes]:
        """What changed per partition since the last call (the next checkpoint's share)."""
        out: dict[int, Changes] = {}
        gaps = self.gaps[utility]
        if self.persist_last:
            for sid, p, last in gaps.take_changed():
                out.setdefault(p, Changes()).last[sid] = str(int(last))
        else:
            gaps.dirty[:] = False
        if utility == "water":
            for sid in self.leaks.dirty:
                run = self.leaks.runs.get(sid)
                out.setdefault(self.leaks.part[sid], Changes()).runs[sid] = \
                    None if run is None else ",".join(f"{v:.17g}" for v in run)
            self.leaks.dirty = set()
        for alert in self._events[utility]:
            part = self._detector(alert.kind, utility).partition_of(alert.service_id)
            if part is None:
                continue
            mine = out.setdefault(part, Changes())
            mine.alerts[f"{alert.kind}:{alert.service_id}"] = \
                encode(alert) if alert.is_open else None
            if not alert.is_open:
                mine.closed.append((float(alert.end), encode(alert)))
        self._events[utility] = []
        self._day_changes(utility, out)
        return out

    def _day_changes(self, utility: str, out: dict[int, Changes]) -> None:
        led = self.ledgers[utility]
        for sid in led.dirty:
            day = led.open.get(sid)
            out.setdefault(led.part[sid], Changes()).days[sid] = day and day.encode()
        led.dirty = set()
        for sid, day in led.closed:
            out.setdefault(led.part[sid], Changes()).past_days.append(
                (sid, day.date, day.encode()))
        led.closed = []
        for p, group in led.dirty_groups:
            _, state, kind, date = group
            out.setdefault(p, Changes()).sketches[(date, f"{state}:{kind}")] = \
                led.similar[p].serialized(group)
        led.dirty_groups = set()
        led.prune()

    def restore(self, utility: str, partition: int, last: dict, runs: dict,
                alerts: dict, days: dict, sketches: dict) -> None:
        """A partition's persisted state (Redis hashes: bytes -> bytes) back in memory."""
        gaps = self.gaps[utility]
        for sid, ts in last.items():
            gaps.remember(_text(sid), float(ts), partition)
        for sid, run in runs.items():
            start, hour, low = (float(v) for v in _text(run).split(","))
            self.leaks.runs[_text(sid)] = (start, hour, low)
            self.leaks.part[_text(sid)] = partition
        for raw in alerts.values():
            alert = decode(raw)
            (gaps.open if alert.kind == "gap" else self.leaks.open)[alert.service_id] = alert
        led = self.ledgers[utility]
        for sid, raw in days.items():
            led.restore(_text(sid), Day.decode(raw), partition)
        for (date, profile), raw in sketches.items():
            state, kind = profile.split(":")
            led.similar_of(partition).merge((utility, state, kind, date), raw)

    def learn(self, utility: str, hourly: Rows) -> None:
        """Final hourly windows a store still holds (a live worker's new partition): the
        spikes' baseline, without alerting on them again."""
        if utility in self.spikes:
            self.spikes[utility].observe(hourly, alert=False)

    def learn_finest(self, utility: str, final: Rows, size: int) -> None:
        """Final finest windows a store still holds: each meter's last reading (not
        written every checkpoint; see persist_last) and the windows of the quarter its
        open day had not taken yet (an open day is written once a quarter)."""
        self.gaps[utility].learn(final)
        if QUARTER % size == 0:
            self.ledgers[utility].observe(final)

    def forget(self, utility: str, partitions: set[int]) -> None:
        self.gaps[utility].forget(partitions)
        self.ledgers[utility].forget(partitions)
        if utility == "water":
            self.leaks.forget(partitions)
        if utility in self.spikes:
            self.spikes[utility].forget(partitions)

    def _detector(self, kind: str, utility: str) -> GapDetector | LeakDetector | SpikeDetector:
        return {"gap": self.gaps[utility], "leak": self.leaks}.get(kind) or self.spikes[utility]


def encode(alert: Alert) -> str:
    return json.dumps(asdict(alert), separators=(",", ":"))


def decode(raw: bytes | str) -> Alert:
    return Alert(**json.loads(raw))


def _text(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v
