"""Event-time watermark: the lowest, over live partitions, of the highest end_ts seen in each.

Only event timestamps move it. The processing-time clock is used for one thing:
deciding that a partition has gone idle, so a quiet partition cannot stall the rest.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field

NO_WATERMARK = -math.inf
END_OF_INPUT = math.inf


@dataclass
class _Partition:
    high: float = NO_WATERMARK
    last_seen: float = 0.0


def _always(partition: Hashable) -> bool:
    return True


@dataclass
class Watermark:
    """A partition is idle when it sent nothing for idle_timeout AND has nothing left to read.

    The second condition matters: a consumer that is merely busy with other partitions
    must not make a backlogged one look idle, or its whole backlog turns late.
    """

    idle_timeout: float = 30.0
    clock: Callable[[], float] = time.monotonic
    caught_up: Callable[[Hashable], bool] = _always
    _parts: dict[Hashable, _Partition] = field(default_factory=dict)
    _value: float = NO_WATERMARK

    def assign(self, partitions: Iterable[Hashable]) -> None:
        now = self.clock()
        for p in partitions:
            self._parts.setdefault(p, _Partition(last_seen=now))

    def revoke(self, partitions: Iterable[Hashable]) -> None:
        for p in partitions:
            self._parts.pop(p, None)

    def observe(self, partition: Hashable, max_end_ts: float) -> None:
        part = self._parts.setdefault(partition, _Partition())
        part.high = max(part.high, float(max_end_ts))
        part.last_seen = self.clock()

    def restore(self, partition: Hashable, high: float) -> None:
        """After a restart: the per-partition high-water committed with the state."""
        self._parts.setdefault(partition, _Partition(last_seen=self.clock())).high = high
        self._value = max(self._value, min(p.high for p in self._parts.values()))

    def partitions(self) -> list[Hashable]:
        return list(self._parts)

    def high(self, partition: Hashable) -> float:
        part = self._parts.get(partition)
        return part.high if part else NO_WATERMARK

    def current(self) -> float:
        """Monotonic: never moves back, even when an idle partition wakes with older data."""
        now = self.clock()
        # a partition not yet heard from holds back until it goes idle (start-up fetch order)
        live = [p.high for key, p in self._parts.items()
                if now - p.last_seen < self.idle_timeout or not self.caught_up(key)]
        if not live:  # all idle: the highest we have seen anywhere is safe to use
            live = [max((p.high for p in self._parts.values()), default=NO_WATERMARK)]
        self._value = max(self._value, min(live))
        return self._value

    def end_of_input(self) -> None:
        self._value = END_OF_INPUT
