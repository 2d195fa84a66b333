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
from auth_kappa.insights.meters import MeterIndex, grown
from auth_kappa.topology.window_table import Rows, edge_seconds


@dataclass
class GapDetector:
    utility: str
    gap_after: float = 300.0
    heartbeat: float = 5.0
    meters: MeterIndex = field(default_factory=MeterIndex)   # shared by a stage's detectors
    open: dict[str, Alert] = field(default_factory=dict)
    # closed gaps with the readings around them: (alert, value before, value after)
    bounds: list[tuple[Alert, float, float]] = field(default_factory=list)
    # per meter row: last reading's end_ts (-inf: none held), its partition, its value,
    # and whether it changed since the last take_changed()
    last: np.ndarray = field(default_factory=lambda: np.zeros(0))
    part: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    value: np.ndarray = field(default_factory=lambda: np.zeros(0))
    dirty: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    _checked: dict[int, float] = field(default_factory=dict)  # partition -> cut scanned

    def observe(self, final: Rows) -> list[Alert]:
        """Final finest windows (any order): gaps between readings, and open gaps that end.
        Columnar: Python runs only per gap."""
        if not len(final) or final.seen is None:
            return []
        t, rows, part, val = self._by_meter(final)
        prev = self.last[rows]
        keep = t > prev                      # a window held again adds nothing
        t, rows, part, val, prev = t[keep], rows[keep], part[keep], val[keep], prev[keep]
        if not len(t):
            return []
        text = self.meters.text
        out: list[Alert] = []
        start = np.r_[True, rows[1:] != rows[:-1]]
        heads = np.flatnonzero(start)                           # since the last batch
        since = heads[np.isfinite(prev[heads]) & (t[heads] - prev[heads] >= self.gap_after)]
        for i in since.tolist():
            out.append(self._closed(text[rows[i]], float(prev[i]), float(t[i]),
                                    float(self.value[rows[i]]), float(val[i])))
        for i in np.flatnonzero(~start[1:] & (np.diff(t) >= self.gap_after)).tolist():
            out.append(self._closed(text[rows[i]], float(t[i]), float(t[i + 1]),
                                    float(val[i]), float(val[i + 1])))
        end = np.r_[heads[1:] - 1, len(t) - 1]
        mine = rows[end]
        self.last[mine], self.part[mine], self.value[mine] = t[end], part[end], val[end]
        self.dirty[mine] = True
        return out

    def learn(self, final: Rows) -> None:
        """Final finest windows a store still holds (a live worker's new partition): each
        meter's last reading, without alerting (what they held was alerted on before)."""
        if not len(final) or final.seen is None:
            return
        t, rows, part, _ = self._by_meter(final)
        end = np.r_[rows[1:] != rows[:-1], True]
        t, rows, part = t[end], rows[end], part[end]
        newer = t > self.last[rows]
        self.last[rows[newer]], self.part[rows[newer]] = t[newer], part[newer]

    def remember(self, sid: str, last: float, partition: int) -> None:
        row = self.meters.row_of(sid)
        self._fit()
        self.last[row], self.part[row] = last, partition

    def partition_of(self, sid: str) -> int | None:
        """The source partition of a meter this detector holds (None for any other: the
        shared index may hold meters this detector never saw, or not hold it at all)."""
        row = self.meters.find(sid)
        p = int(self.part[row]) if row is not None and row < len(self.part) else -1
        return p if p >= 0 else None

    def take_changed(self) -> list[tuple[str, int, float]]:
        """(service_id, partition, last) of each meter changed since the last call."""
        rows = np.flatnonzero(self.dirty)
        self.dirty[rows] = False
        return list(zip(self.meters.text[rows].tolist(), self.part[rows].tolist(),
                        self.last[rows].tolist(), strict=True))

    def _by_meter(self, final: Rows) -> tuple[np.ndarray, ...]:
        """(time, meter row, partition, value) of the windows' readings, by meter then time."""
        t, k0, k1, part, val = reading_times(final, self.gap_after)
        rows = self._rows(k0, k1)
        order = np.lexsort((t, rows))
        return t[order], rows[order], part[order], val[order]

    def _rows(self, k0: np.ndarray, k1: np.ndarray) -> np.ndarray:
        rows = self.meters.rows(k0, k1)
        self._fit()
        return rows

    def _fit(self) -> None:
        """Room for every row of the (shared) meter index."""
        n = len(self.meters)
        self.last, self.value = grown(self.last, n, -np.inf), grown(self.value, n, np.nan)
        self.part, self.dirty = grown(self.part, n, -1), grown(self.dirty, n, False)

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
        if not moved or not len(self.last):
            return []
        self._checked.update(moved)
        upto = np.full(len(self.last), -np.inf)
        for p, u in moved.items():
            upto[self.part == p] = u
        out = []
        with np.errstate(invalid="ignore"):   # -inf: no reading held
            silent = np.flatnonzero(np.isfinite(self.last) & (upto - self.last >= self.gap_after))
        for i in silent.tolist():
            sid = self.meters.text[i]
            if sid not in self.open:
                self.open[sid] = alert = Alert("gap", self.utility, sid, float(self.last[i]),
                                               None, 0.0, f"no reading since {self.last[i]:.0f}")
                out.append(alert)
        return out

    def forget(self, partitions: set[int]) -> None:
        """Drop the state of partitions this runtime no longer holds."""
        gone = np.flatnonzero(np.isin(self.part, list(partitions)))
        for sid in self.meters.text[gone].tolist():
            self.open.pop(sid, None)
        self.last[gone], self.part[gone], self.value[gone] = -np.inf, -1, np.nan
        self.dirty[gone] = False
        for p in partitions:
            self._checked.pop(p, None)


def reading_times(rows: Rows, gap_after: float = np.inf) -> tuple[np.ndarray, ...]:
    """(end_ts, k0, k1, partition, value) of the readings in final finest windows that can
    bound a gap; value only for each window's first and last reading (the ones around a
    gap), else NaN. When a window spans less than `gap_after` (its seen bits cover fewer
    seconds), no gap fits between two readings inside it: its first and last suffice."""
    part = rows.part if rows.part is not None else np.full(len(rows), -1)
    if rows.seen.shape[1] * 64 <= gap_after:
        lo, hi, has = edge_seconds(rows.seen)
        r = np.flatnonzero(has)
        value = rows.edges[r] if rows.edges is not None else np.full((len(r), 2), np.nan)
        ws = rows.window_start[r]
        return (np.r_[ws + lo[r], ws + hi[r]], np.r_[rows.k0[r], rows.k0[r]],
                np.r_[rows.k1[r], rows.k1[r]], np.r_[part[r], part[r]],
                np.r_[value[:, 0], value[:, 1]])
    bits = np.unpackbits(rows.seen.view(np.uint8), axis=1, bitorder="little")
    r, b = np.nonzero(bits)
    value = np.full(len(r), np.nan)
    if rows.edges is not None and len(r):   # a window's first and last reading's value
        head = np.r_[True, r[1:] != r[:-1]]
        tail = np.r_[r[1:] != r[:-1], True]
        value[head], value[tail] = rows.edges[r[head], 0], rows.edges[r[tail], 1]
    return rows.window_start[r] + b, rows.k0[r], rows.k1[r], part[r], value
