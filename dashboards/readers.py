"""What the dashboard reads, whoever computed it: the live Redis or the embedded engine.

Queries (dashboards/queries.py) are written once against this interface; a reader only
fetches window values for exact (key, window_start) cells, the event-time clock, the
workers' counters and registry entries. Values come back as codec.VALUE arrays
(sum, count, min, max), a missing window as count 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from auth_kappa.topology.schema import UTILITIES

COUNTERS: tuple[str, ...] = ("accepted", "duplicates", "late", "quarantined")


@dataclass(frozen=True)
class Clock:
    """Event time per utility: the newest reading applied and the watermark (slowest partition)."""

    newest: dict[str, int] = field(default_factory=dict)
    watermark: dict[str, int] = field(default_factory=dict)
    checkpoint_ts: float | None = None     # wall clock of the workers' last checkpoint
    namespace: str = ""


@dataclass(frozen=True)
class Stats:
    """Running counters per utility (accepted, duplicates, late, quarantined)."""

    counters: dict[str, dict[str, int]] = field(default_factory=dict)

    def get(self, name: str, utility: str) -> int:
        return self.counters.get(name, {}).get(utility, 0)

    @classmethod
    def from_flat(cls, flat: dict[str, float]) -> Stats:
        """`accepted:gas` -> 12 (the stats hash's fields) into {"accepted": {"gas": 12}}."""
        out: dict[str, dict[str, int]] = {name: dict.fromkeys(UTILITIES, 0) for name in COUNTERS}
        for key, value in flat.items():
            name, _, utility = key.partition(":")
            if name in out and utility in UTILITIES:
                out[name][utility] = int(value)
        return cls(out)


class Reader(Protocol):
    """The reads behind every page and API call."""

    sizes: tuple[int, ...]          # window sizes computed, ascending
    kind: str                       # "redis" or "embedded"

    async def refresh(self) -> None:
        """Re-read the clock and counters (the poller calls this once per interval)."""
        ...

    async def clock(self) -> Clock: ...

    async def stats(self) -> Stats: ...

    async def meter(self, service_id: str, reads: list[tuple[str, int, list[int]]]
                    ) -> tuple[dict[str, str] | None, list[np.ndarray]]:
        """Registry entry (None if unknown) and one VALUE array per (utility, size, starts)."""
        ...

    async def states(self, utility: str, size: int, starts: list[int]) -> np.ndarray:
        """VALUE array shaped (51 states in schema.STATES order, len(starts))."""
        ...

    async def search(self, text: str, limit: int) -> list[dict[str, str]]: ...

    async def registry_size(self) -> int: ...

    async def alerts(self) -> list[bytes]:
        """Every alert the store holds (JSON of auth_kappa/insights/alerts.Alert): the
        open ones and the closed ones still in history."""
        ...

    async def owners(self, sids: list[str]) -> dict[str, dict[str, str] | None]:
        """Registry entries of these meters (None: unregistered)."""
        ...

    async def days(self, service_id: str) -> dict[str, list[bytes]]:
        """utility -> the meter's local days (auth_kappa/insights/bills.Day records): the
        past ones Redis keeps, then the open one."""
        ...

    async def sketches(self, utility: str, date: str) -> dict[str, list[bytes]]:
        """"<state>:<type>" -> every partition's similar-homes sketch of a local day."""
        ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...
