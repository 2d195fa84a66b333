"""Gaps: a meter that sent nothing for `gap_after` seconds of event time.

Fed by the final windows of the finest size: their seen bits give every reading's end_ts
(window_start + bit), and a final window can gain no reading any more, so a gap found
there is certain. A gap opens once the meter's partition has final windows `gap_after`
seconds past its last reading (the partition moved on without it); it closes at the next
reading, with the readings missed at the meter's heartbeat. State is kept per source
partition, so a live worker persists and reloads exactly the partitions it owns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from auth_kappa.insights.alerts import Alert
from auth_kappa.topology.keys import uuid_text
from auth_kappa.topology.window_table import Rows


@dataclass
class GapDetector:
    utility: str
    gap_after: float = 300.0
    heartbeat: float = 5.0
    # service_id -> last end_ts, and -> partition: always the same keys in the same order
    last: dict[str, float] = field(default_factory=dict)
    part: dict[str, int] = field(default_factory=dict)
    open: dict[str, Alert] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)             # last changed since changes()
    value: dict[str, float] = field(default_factory=dict)    # service_id -> last reading's
    # closed gaps with the readings around them: (alert, value before, value after)
    bounds: list[tuple[Alert, float, float]] = field(default_factory=list)
    _checked: dict[int, float] = field(default_factory=dict)  # partition -> cut scanned

    def observe(self, final: Rows) -> list[Alert]:
        """Final finest windows (any order): gaps between readings, and open gaps that end.
        Columnar: Python runs once per meter in the batch, and per gap."""
        if not len(final) or final.seen is None:
            return []
        t, k0, k1, part, val = reading_times(final)
        order = np.lexsort((t, k1, k0))
        t, k0, k1, part, val = t[order], k0[order], k1[order], part[order], val[order]
        first = np.r_[True, (k0[1:] != k0[:-1]) | (k1[1:] != k1[:-1])]
        group = np.cumsum(first) - 1
        heads = np.flatnonzero(first)
        sids = uuid_text(k0[heads], k1[heads]).tolist()
        prev = np.array([self.last.get(s, -np.inf) for s in sids])
        keep = t > prev[group]               # a window held again adds nothing
        t, group, part, val = t[keep], group[keep], part[keep], val[keep]
        if not len(t):
            return []
        out: list[Alert] = []
        start = np.r_[True, group[1:] != group[:-1]]
        jump = np.diff(t) >= self.gap_after
        heads_t = np.flatnonzero(start)                         # since the last batch
        before = prev[group[heads_t]]
        with np.errstate(invalid="ignore"):
            since = heads_t[np.isfinite(before) & (t[heads_t] - before >= self.gap_after)]
        for i in since.tolist():
            sid = sids[group[i]]
            out.append(self._closed(sid, float(prev[group[i]]), float(t[i]),
                                    self.value.get(sid, np.nan), float(val[i])))
        for i in np.flatnonzero(~start[1:] & jump):            # inside this batch
            out.append(self._closed(sids[group[i]], float(t[i]), float(t[i + 1]),
                                    float(val[i]), float(val[i + 1])))
        end = np.r_[np.flatnonzero(start)[1:] - 1, len(t) - 1]
        mine = [sids[g] for g in group[end].tolist()]
        self.last.update(zip(mine, t[end].tolist(), strict=True))
        self.part.update(zip(mine, part[end].tolist(), strict=True))
        self.value.update(zip(mine, val[end].tolist(), strict=True))
        self.dirty.update(mine)
        return out

    def learn(self, final: Rows) -> None:
        """Final finest windows a store still holds (a live worker's new partition): each
        meter's last reading, without alerting (what they held was alerted on before)."""
        if not len(final) or final.seen is None:
            return
        t, k0, k1, part, _ = reading_times(final)
        order = np.lexsort((t, k1, k0))
        t, k0, k1, part = t[order], k0[order], k1[order], part[order]
        end = np.r_[(k0[1:] != k0[:-1]) | (k1[1:] != k1[:-1]), True]
        for sid, ts, p in zip(uuid_text(k0[end], k1[end]).tolist(), t[end].tolist(),
                              part[end].tolist(), strict=True):
            if ts > self.last.get(sid, -np.inf):
                self.last[sid], self.part[sid] = float(ts), int(p)

    def remember(self, sid: str, last: float, partition: int) -> None:
        self.last[sid], self.part[sid] = last, partition

    def _closed(self, sid: str, start: float, end: float, before: float, after: float
                ) -> Alert:
        missing = max(0, round((end - start) / self.heartbeat) - 1)
        alert = self.open.get(sid)
        if alert is not None and alert.start == start:   # the open one ends here
            del self.open[sid]
        else:
            alert = Alert("gap", self.utility, sid, start, None, 0, "")
        alert.end, alert.value = end, float(missing)
        alert.detail = (f"no reading for {end - start:.0f} s ({missing} missed at one per "
                        f"{self.heartbeat:g} s)")
        self.bounds.append((alert, before, after))
        return alert

    def advance(self, final_upto: dict[int, float]) -> list[Alert]:
        """Open a gap for every meter whose partition's windows are final up to
        `final_upto[partition]` and that was silent for gap_after before that. Scans only
        when a partition's cut moved (once a window step)."""
        moved = {p: u for p, u in final_upto.items() if u > self._checked.get(p, -np.inf)}
        if not moved or not self.last:
            return []
        self._checked.update(moved)
        sids = list(self.last)
        last = np.fromiter(self.last.values(), np.float64, len(sids))
        part = np.fromiter(self.part.values(), np.int64, len(sids))
        upto = np.full(len(sids), -np.inf)
        for p, u in moved.items():
            upto[part == p] = u
        out = []
        for i in np.flatnonzero(upto - last >= self.gap_after):
            sid = sids[i]
            if sid not in self.open:
                self.open[sid] = alert = Alert("gap", self.utility, sid, float(last[i]), None,
                                               0.0, f"no reading since {last[i]:.0f}")
                out.append(alert)
        return out

    def forget(self, partitions: set[int]) -> None:
        """Drop the state of partitions this runtime no longer holds."""
        gone = [s for s, p in self.part.items() if p in partitions]
        for sid in gone:
            for table in (self.last, self.part, self.open):
                table.pop(sid, None)
            self.dirty.discard(sid)
        for p in partitions:
            self._checked.pop(p, None)


def reading_times(rows: Rows) -> tuple[np.ndarray, ...]:
    """(end_ts, k0, k1, partition, value) of every reading in final finest windows; value
    only for each window's first and last reading (the ones around a gap), else NaN."""
    bits = np.unpackbits(rows.seen.view(np.uint8), axis=1, bitorder="little")
    r, b = np.nonzero(bits)
    part = rows.part if rows.part is not None else np.full(len(rows), -1)
    value = np.full(len(r), np.nan)
    if rows.edges is not None and len(r):   # a window's first and last reading's value
        head = np.r_[True, r[1:] != r[:-1]]
        tail = np.r_[r[1:] != r[:-1], True]
        value[head], value[tail] = rows.edges[r[head], 0], rows.edges[r[tail], 1]
    return rows.window_start[r] + b, rows.k0[r], rows.k1[r], part[r], value
