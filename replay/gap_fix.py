"""A correction's alerts: late readings that reach the archive can fill a gap the live
workers closed, or the hour that broke a leak's run. The correction already sends the
range's final windows through the one topology, so the same insights stage finds the
range's gaps and leaks again, from every reading the archive holds; each closed one held
in Redis that lies wholly in the range and is final in the live namespace is then kept
if found again, else removed, and one found only now (a filled gap split in two, a leak
whose run did not break) is added.

Open alerts are the live workers' (they close them), and an alert that straddles an edge
of the range is left alone, as a straddling window is. Spikes are not recomputed: their
baseline is the weeks before the range.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from auth_kappa.config import Config
from auth_kappa.insights.alerts import Alert
from auth_kappa.insights.stage import InsightRules, Insights, encode
from auth_kappa.state.redis_store import RedisWindowStore
from auth_kappa.topology.processor import Slot, Topology
from auth_kappa.topology.window_table import Rows
from auth_kappa.topology.windows import is_closed

GapKey = tuple[str, str, str, int, int]   # kind, utility, service_id, start, end (s)
KINDS = ("gap", "leak")


@dataclass
class GapFix:
    removed: int = 0    # closed alerts the archive's readings changed (a gap filled...)
    added: int = 0      # what they are now
    kept: int = 0
    found: dict[GapKey, tuple[int, Alert]] = field(default_factory=dict)  # -> partition


class GapRecompute:
    def __init__(self, config: Config, topology: Topology, start: int, end: int) -> None:
        self.topology, self.start, self.end = topology, start, end
        self.grace = config.grace
        self.insights = Insights(InsightRules.from_config(config), keep_all=True)

    def observe(self, final: dict[Slot, Rows]) -> None:
        """A feed step's final windows (every utility it holds)."""
        for utility in {slot[0] for slot in final}:
            self.insights.observe(self.topology, utility, final)

    def apply(self, live: RedisWindowStore, low: dict[str, float]) -> GapFix:
        """Reconcile the held closed gaps of the range with the ones found again."""
        fix = GapFix()
        for alert in self.insights.alerts:
            if alert.kind in KINDS and self._covered(alert, low):
                detector = self.insights.gaps[alert.utility] if alert.kind == "gap" \
                    else self.insights.leaks
                fix.found[_key(alert)] = (detector.partition_of(alert.service_id) or 0, alert)
        held = self._held(live, low)
        pipe = live.client.pipeline(transaction=False)
        for key, (history, raw) in held.items():
            if key in fix.found:
                fix.kept += 1
            else:
                pipe.zrem(history, raw)
                fix.removed += 1
        for key, (part, alert) in fix.found.items():
            if key not in held:
                pipe.zadd(live.keys.insight("history", alert.utility, part),
                          {encode(alert): alert.end})
                fix.added += 1
        if fix.removed or fix.added:
            pipe.execute()
        return fix

    def _covered(self, alert: Alert, low: dict[str, float]) -> bool:
        """Closed, wholly in the range, and final in the live namespace."""
        return alert.end is not None and alert.start >= self.start and \
            alert.end <= self.end and is_closed(alert.end, self.grace, low.get(alert.utility, 0))

    def _held(self, live: RedisWindowStore, low: dict[str, float]
              ) -> dict[GapKey, tuple[str, bytes]]:
        """The closed alerts Redis holds in the range: key -> (history key, its JSON)."""
        keys = [live.keys.insight("history", u, p)
                for u, n in sorted(live.partition_counts(refresh=True).items())
                if u in self.insights.gaps and u in low for p in range(n)]
        pipe = live.client.pipeline(transaction=False)
        for key in keys:
            pipe.zrangebyscore(key, self.start, self.end)
        out = {}
        for key, members in zip(keys, pipe.execute() if keys else [], strict=True):
            for raw in members:
                alert = Alert(**json.loads(raw))
                if alert.kind in KINDS and self._covered(alert, low):
                    out[_key(alert)] = (key, raw)
        return out


def _key(alert: Alert) -> GapKey:
    return (alert.kind, alert.utility, alert.service_id, round(alert.start),
            round(alert.end or 0))
