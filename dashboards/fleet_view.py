"""The fleet's per-state windows in memory, kept by the change stream like the meters.

A notice carries its checkpoint's per-state deltas (codec.state_blob records, the same
blob state/lua/commit.lua merges), so memory merges them the same way: sum and count
added, min and max combined, and the same retention, with N the newest window start the
state key has held: a delta at or below floor((N - retention) / size) * size is not
stored and such windows are gone. Only the newest `ring` windows per utility and size are
held (what the fleet pages show, plus slack); a read reaching further back goes to Redis.
The start is one snapshot (dashboards/changes.py reads it with the stream's counter S in
one MULTI); a notice is applied only when numbered above S.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from auth_kappa.state import codec
from auth_kappa.topology.schema import STATES

_CODES = np.array(STATES, dtype="S2")
_ORDER = np.argsort(_CODES)


def state_index(codes: np.ndarray) -> np.ndarray:
    """Row of each 2-letter state code in schema.STATES order."""
    return _ORDER[np.searchsorted(_CODES[_ORDER], codes)]


class StateRing:
    """One utility and size: (51 states x ring) windows, newest first reached by start."""

    def __init__(self, size: int, ring: int, keep: int) -> None:
        self.size, self.ring, self.keep = size, ring, keep
        self.starts = np.zeros(ring, np.int64)
        self.values = codec.decode_values([None] * (len(STATES) * ring), 0).reshape(
            len(STATES), ring).copy()
        self.newest: int | None = None   # N: the newest window start the key has held
        self.lo = 0                      # the oldest start the snapshot covered

    def fields(self, newest: int, slack: int) -> list[int]:
        """Window starts a snapshot reads (ascending) when the key's newest start was
        `newest` a moment ago: what the ring holds, for a newest up to `slack` further."""
        top = newest + slack * self.size
        return [top - self.size * i for i in range(self.ring + slack)][::-1]

    def load(self, newest: int | None, starts: list[int], raw: list[bytes | None]) -> None:
        """The snapshot: the key's N and the values of `starts` (51 per start, state-major),
        of which the ring keeps the newest `ring` windows up to N."""
        self.newest = newest
        self.starts[:] = 0
        self.values[:] = codec.decode_values([None], 0)[0]
        if newest is None:
            return
        self.lo = newest - (self.ring - 1) * self.size
        vals = codec.decode_values(raw, 0).reshape(len(STATES), len(starts))
        for j, w in enumerate(starts):
            if self.lo <= w <= newest:
                cell = w // self.size % self.ring
                self.starts[cell] = w
                self.values[:, cell] = vals[:, j]

    def _floor(self) -> int:
        return max(self.lo, self.newest - (self.ring - 1) * self.size)

    def _cut(self) -> int:
        return (self.newest - self.keep) // self.size * self.size

    def apply(self, records: np.ndarray) -> None:
        """One block of deltas (codec.state_blob records), as commit.lua merges them."""
        if not len(records):
            return
        ws = records["ws"]
        top = int(ws.max())
        self.newest = top if self.newest is None else max(self.newest, top)
        keep = (ws > self._cut()) & (ws >= self._floor())
        ws, v = ws[keep], records["val"][keep]
        cell = ws // self.size % self.ring
        fresh = self.starts[cell] != ws   # a window newer than any held in its cell
        if fresh.any():
            for c, w in zip(cell[fresh].tolist(), ws[fresh].tolist(), strict=True):
                self.starts[c] = w
                self.values[:, c] = codec.decode_values([None], 0)[0]
        row = state_index(records["state"][keep])
        np.add.at(self.values["sum"], (row, cell), v["sum"])
        np.add.at(self.values["count"], (row, cell), v["count"])
        np.minimum.at(self.values["min"], (row, cell), v["min"])
        np.maximum.at(self.values["max"], (row, cell), v["max"])

    def read(self, starts: list[int]) -> np.ndarray | None:
        """(51 states, len(starts)) values, or None when memory does not reach them."""
        if self.newest is None:
            return codec.decode_values([None] * (len(STATES) * len(starts)), 0).reshape(
                len(STATES), len(starts)).copy()
        if starts and starts[0] < self._floor():
            return None
        w = np.asarray(starts, np.int64)
        cell = w // self.size % self.ring
        out = self.values[:, cell]
        gone = (self.starts[cell] != w) | (w <= self._cut())
        out[:, gone] = codec.decode_values([None], 0)[0]
        return out


class FleetView:
    """Every utility's StateRings; `rings`: size -> (windows held, state retention s)."""

    def __init__(self, utilities: tuple[str, ...], rings: Mapping[int, tuple[int, int]]
                 ) -> None:
        self.rings = {(u, size): StateRing(size, ring, keep)
                      for u in utilities for size, (ring, keep) in rings.items()}
        self.asof: int | None = None   # None: no snapshot yet

    def apply(self, n: int, utility: str, size: int, records: np.ndarray) -> None:
        ring = self.rings.get((utility, size))
        if ring is not None and self.asof is not None and n > self.asof:
            ring.apply(records)

    def read(self, utility: str, size: int, starts: list[int]) -> np.ndarray | None:
        ring = self.rings.get((utility, size))
        return None if ring is None or self.asof is None else ring.read(starts)
