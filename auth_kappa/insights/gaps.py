"""Gaps: a meter that sent nothing for `gap_after` seconds of event time.

Fed by the final windows of the finest size: their seen bits give every reading's end_ts
(window_start + bit), and a final window can gain no reading any more, so a gap found
there is certain. A gap opens once the meter's partition has final windows `gap_after`
seconds past its last reading (the partition moved on without it); it closes at the next
reading, with the readings missed at the meter's heartbeat. State is kept per source
partition, so a live worker persists and reloads exactly the partitions it owns.
"""

from __future__ import annotations

import heapq
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
    last: dict[str, float] = field(default_factory=dict)     # service_id -> last end_ts
    part: dict[str, int] = field(default_factory=dict)       # service_id -> partition
    open: dict[str, Alert] = field(default_factory=dict)
    # per partition: (last end_ts, service_id), oldest first; stale entries are skipped
    _due: dict[int, list[tuple[float, str]]] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)             # last changed since changes()

    def observe(self, final: Rows) -> list[Alert]:
        """Final finest windows (any order): gaps between readings, and open gaps that end."""
        if not len(final) or final.seen is None:
            return []
        times, sids, parts = reading_times(final)
        order = np.lexsort((times, sids))
        times, sids, parts = times[order], sids[order], parts[order]
        out: list[Alert] = []
        starts = np.flatnonzero(np.r_[True, sids[1:] != sids[:-1]])
        for lo, hi in zip(starts, np.r_[starts[1:], len(sids)], strict=True):
            sid, ts = str(sids[lo]), times[lo:hi]
            before = self.last.get(sid)
            seq = ts if before is None else np.r_[before, ts[ts > before]]
            if before is not None and len(seq) == 1:
                continue   # nothing newer (a window held again)
            for g in np.flatnonzero(np.diff(seq) >= self.gap_after):
                out.append(self._closed(sid, float(seq[g]), float(seq[g + 1])))
            self.remember(sid, float(seq[-1]), int(parts[hi - 1]))
        return out

    def remember(self, sid: str, last: float, partition: int) -> None:
        self.last[sid], self.part[sid] = last, partition
        heapq.heappush(self._due.setdefault(partition, []), (last, sid))
        self.dirty.add(sid)

    def _closed(self, sid: str, start: float, end: float) -> Alert:
        missing = max(0, round((end - start) / self.heartbeat) - 1)
        alert = self.open.pop(sid, None) or Alert("gap", self.utility, sid, start, None, 0, "")
        alert.end, alert.value = end, float(missing)
        alert.detail = (f"no reading for {end - start:.0f} s ({missing} missed at one per "
                        f"{self.heartbeat:g} s)")
        return alert

    def advance(self, final_upto: dict[int, float]) -> list[Alert]:
        """Open a gap for every meter whose partition's windows are final up to
        `final_upto[partition]` and that was silent for gap_after before that."""
        out = []
        for p, upto in final_upto.items():
            due = self._due.get(p)
            while due and upto - due[0][0] >= self.gap_after:
                last, sid = heapq.heappop(due)
                if self.last.get(sid) != last or sid in self.open or self.part.get(sid) != p:
                    continue   # it read again since (a newer entry is queued), or is open
                alert = Alert("gap", self.utility, sid, last, None, 0.0,
                              f"no reading since {last:.0f}")
                self.open[sid] = alert
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
            self._due.pop(p, None)


def reading_times(rows: Rows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(end_ts, service_id, partition) of every reading in final finest windows."""
    bits = np.unpackbits(rows.seen.view(np.uint8), axis=1, bitorder="little")
    r, b = np.nonzero(bits)
    sids = uuid_text(rows.k0, rows.k1).astype(str)
    part = rows.part if rows.part is not None else np.full(len(rows), -1)
    return rows.window_start[r] + b, sids[r], part[r]
