"""A chunk of clean readings of one utility, columnar: what the generator yields and the
anomalies, faults and encoders transform (its own module: they all import it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from simulators.profiles import DECIMALS
from simulators.registry import Registry

READING_SCHEMA = pa.schema([
    ("service_id", pa.string()), ("user_name", pa.string()), ("type", pa.string()),
    ("start_ts", pa.int64()), ("state", pa.string()), ("consumption", pa.float64()),
    ("end_ts", pa.int64()),
])
"""Column names and order of the seed format (CSV fields 1-7)."""


@dataclass(frozen=True)
class Readings:
    """Clean readings of one utility for sequence positions g0 .. g0+len-1 (or `g`)."""

    utility: str
    g0: int
    meter: np.ndarray  # int64 index into the registry
    start_ts: np.ndarray  # int64 epoch seconds
    end_ts: np.ndarray  # int64 epoch seconds
    units: np.ndarray  # int64 consumption in 10**-decimals of the utility's unit
    g: np.ndarray | None = None  # sequence positions when some are missing (--inject gap)

    def __len__(self) -> int:
        return len(self.meter)

    @property
    def positions(self) -> np.ndarray:
        """Each reading's sequence position (g0, g0+1, ... unless a gap removed some)."""
        if self.g is not None:
            return self.g
        return self.g0 + np.arange(len(self), dtype=np.int64)

    @property
    def decimals(self) -> int:
        return DECIMALS[self.utility]

    @property
    def consumption(self) -> np.ndarray:
        """float64 values; each equals float() of its printed decimal text exactly."""
        return self.units / 10 ** self.decimals

    def take(self, idx: np.ndarray) -> Readings:
        return Readings(self.utility, -1, self.meter[idx], self.start_ts[idx],
                        self.end_ts[idx], self.units[idx])

    def to_arrow(self, registry: Registry) -> pa.RecordBatch:
        """Seed-format columns (READING_SCHEMA), for engines that take columnar input."""
        m = pa.array(self.meter)
        return pa.RecordBatch.from_arrays([
            registry.service_id.take(m), registry.user_name.take(m), registry.type.take(m),
            pa.array(self.start_ts), registry.state.take(m), pa.array(self.consumption),
            pa.array(self.end_ts)], schema=READING_SCHEMA)
