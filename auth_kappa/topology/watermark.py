"""Event time per source partition, and the utility's watermark over them.

Each partition keeps its own event time: the highest end_ts among the valid readings
read from it so far, in the partition's order (Kafka Streams calls it stream time, per
task). Lateness and per-meter finality use the partition's own clock, and every meter
lives on one partition (producers key by service_id), so whether a reading is late
depends only on what came before it in its partition: not on fetch batching, not on
which worker owns the partition, not on restarts or rebalances.

The utility's watermark is the lowest partition clock; it says when per-state windows
(fed by every partition) are final. Only event timestamps move a clock. The
processing-time clock is used for one thing: a partition silent for idle_timeout with
nothing left to read is idle and stops holding the watermark back (its "mark" is raised
to the highest clock; marks are committed so readers of Redis see the same watermark).
Idleness never moves a partition's own clock, so it never makes a reading late.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field

import numpy as np

from auth_kappa.topology.windows import is_final

NO_WATERMARK = -math.inf
END_OF_INPUT = math.inf


@dataclass
class _Partition:
    high: float = NO_WATERMARK    # the clock: highest end_ts read (lateness, meter finality)
    last_seen: float = 0.0
    mark: float = NO_WATERMARK    # what it lets the watermark reach (an idle advance)


def _always(partition: Hashable) -> bool:
    return True


@dataclass
class Watermark:
    """A partition is idle when it sent nothing for idle_timeout AND has nothing left to read.

    The second condition matters: a consumer that is merely busy with other partitions
    must not make a backlogged one look idle, or its backlog would turn late.
    """

    idle_timeout: float = 30.0
    clock: Callable[[], float] = time.monotonic
    caught_up: Callable[[Hashable], bool] = _always
    _parts: dict[Hashable, _Partition] = field(default_factory=dict)
    _value: float = NO_WATERMARK
    _ended: bool = False

    def assign(self, partitions: Iterable[Hashable]) -> None:
        now = self.clock()
        for p in partitions:
            self._parts.setdefault(p, _Partition(last_seen=now))
        self._value = NO_WATERMARK   # recomputed from the partitions now held

    def revoke(self, partitions: Iterable[Hashable]) -> None:
        for p in partitions:
            self._parts.pop(p, None)
        self._value = NO_WATERMARK

    def observe(self, partition: Hashable, max_end_ts: float) -> None:
        part = self._parts.setdefault(partition, _Partition())
        part.high = max(part.high, float(max_end_ts))
        part.last_seen = self.clock()

    def restore(self, partition: Hashable, high: float, mark: float = NO_WATERMARK) -> None:
        """After an assignment: the partition's clock (and mark) as committed with its state
        (exact, never the minimum or maximum over other partitions)."""
        part = self._parts.setdefault(partition, _Partition(last_seen=self.clock()))
        part.high, part.mark = high, mark
        self._value = NO_WATERMARK

    def partitions(self) -> list[Hashable]:
        return list(self._parts)

    def high(self, partition: Hashable) -> float:
        """The partition's own event time: its readings' highest end_ts."""
        part = self._parts.get(partition)
        return part.high if part else NO_WATERMARK

    def mark(self, partition: Hashable) -> float:
        """How far the partition lets the watermark go: its clock, or an idle advance."""
        part = self._parts.get(partition)
        return max(part.high, part.mark) if part else NO_WATERMARK

    @property
    def ended(self) -> bool:
        return self._ended

    def highs(self, partitions: np.ndarray) -> np.ndarray:
        """high() for each element of an array of partition numbers: a lookup table over
        their range (asked for every open window on every batch, so no sort)."""
        if not len(partitions):
            return np.full(0, NO_WATERMARK)
        lo, hi = int(partitions.min()), int(partitions.max())
        table = np.array([self.high(p) for p in range(lo, hi + 1)], np.float64)
        return table[partitions - lo]

    def current(self) -> float:
        """The lowest partition clock, idle partitions advanced; never moves back while the
        assignment stays the same (an assignment change recomputes it)."""
        if self._ended:
            return END_OF_INPUT
        now = self.clock()
        top = max((p.high for p in self._parts.values()), default=NO_WATERMARK)
        live = []
        for key, p in self._parts.items():
            if now - p.last_seen < self.idle_timeout or not self.caught_up(key):
                live.append(max(p.high, p.mark))
            elif p.mark < top:
                p.mark = top   # idle and caught up: it stops holding the others back
        if not live:
            live = [top]
        self._value = max(self._value, min(live))
        return self._value

    def end_of_input(self) -> None:
        self._ended = True


def late_mask(wm: Watermark, partition: np.ndarray, end_ts: np.ndarray,
              window: int, grace: float, ceiling: float = math.inf) -> np.ndarray:
    """Which readings are late, deciding each one in its partition's order.

    A reading is late when its (finest) window ended, plus grace, at or before the
    partition's event time just before it: the partition's clock from earlier batches,
    raised by the readings ahead of it in this batch. Batch order within a partition is
    its order in the partition (decode keeps offset order). No clock passes `ceiling`
    (the wall clock plus the allowed skew), whatever a reading claims."""
    ends = np.asarray(end_ts, np.int64)
    starts = ends // window * window   # late once its window is final by the clock
    if not len(ends):
        return np.zeros(0, bool)
    clocks = {int(p): wm.high(int(p)) for p in np.unique(partition)}
    ends = np.minimum(ends, ceiling)
    if not is_final(starts.min(), window, grace, max(ends.max(), *clocks.values())):
        return np.zeros(len(ends), bool)          # the usual case: nothing can be late
    cuts = np.flatnonzero(np.diff(partition)) + 1
    if len(cuts) < 64:    # runs of one partition (fetches come partition by partition)
        runs = [slice(a, b) for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(ends)],
                                             strict=True)]
    else:
        runs = [np.flatnonzero(partition == p) for p in clocks]
    clock = np.empty(len(ends))
    for rows in runs:
        p = int(partition[rows][0])
        clock[rows] = np.maximum.accumulate(np.maximum(ends[rows], clocks[p]))
        clocks[p] = clock[rows][-1]
    return is_final(starts, window, grace, clock)
