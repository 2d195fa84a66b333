"""Clean readings, generated columnar: all meters at once, a chunk of the stream at a time.

The stream of one utility is laid out as a flat sequence: tick k (0, 1, ...) holds one
reading per meter, meters sorted by their start offset, so the sequence is ordered by
end_ts. A chunk is any contiguous range [g0, g1) of that sequence; the values never
depend on where the chunks are cut (each random stream is consumed in sequence order).

Reading i of a meter with offset o: start_ts = start + o + i*heartbeat, end_ts =
start_ts + heartbeat. Every reading with end_ts <= start + duration is produced: the
last tick may be partial (meters with a larger offset miss it), nothing is dropped.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from auth_kappa.config import UTILITIES
from simulators.anomalies import AnomalyInjector, plan
from simulators.profiles import DECIMALS, make_profile
from simulators.registry import Registry, make_registry
from simulators.rng import stream
from simulators.spec import SimSpec

DEFAULT_CHUNK = 1 << 16

READING_SCHEMA = pa.schema([
    ("service_id", pa.string()), ("user_name", pa.string()), ("type", pa.string()),
    ("start_ts", pa.int64()), ("state", pa.string()), ("consumption", pa.float64()),
    ("end_ts", pa.int64()),
])
"""Column names and order of the seed format (CSV fields 1-7)."""


@dataclass(frozen=True)
class Schedule:
    """When each meter reports: maps sequence position g to (meter, end_ts)."""

    start: int
    heartbeat: int
    order: np.ndarray  # meter indices sorted by offset (stable)
    offsets: np.ndarray  # their offsets, ascending
    total: int  # readings per utility

    @classmethod
    def build(cls, spec: SimSpec, registry: Registry) -> Schedule:
        order = np.argsort(registry.offset_s, kind="stable")
        offsets = registry.offset_s[order]
        ticks = math.floor(spec.duration / spec.heartbeat)  # readings of a meter with offset 0
        # Meters whose offset fits take part in the last tick; the others stop one earlier.
        last_tick = int(np.count_nonzero(offsets <= spec.duration - ticks * spec.heartbeat))
        total = (ticks - 1) * len(order) + last_tick if ticks else 0
        return cls(spec.start, spec.heartbeat, order, offsets, total)

    @property
    def meters(self) -> int:
        return len(self.order)

    def positions(self, g0: int, g1: int) -> tuple[np.ndarray, np.ndarray]:
        """(meter index, end_ts) for sequence positions g0..g1-1."""
        g = np.arange(g0, g1, dtype=np.int64)
        tick, rank = np.divmod(g, self.meters)
        end_ts = self.start + self.offsets[rank] + (tick + 1) * self.heartbeat
        return self.order[rank], end_ts

    def end_ts_at(self, g: int) -> int:
        """end_ts of sequence position g (g < total)."""
        tick, rank = divmod(g, self.meters)
        return int(self.start + self.offsets[rank] + (tick + 1) * self.heartbeat)


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


class ReadingGenerator:
    """Produces consecutive chunks of clean readings for all three utilities."""

    def __init__(self, spec: SimSpec, registry: Registry) -> None:
        self.spec = spec
        self.registry = registry
        self.schedule = Schedule.build(spec, registry)
        self._profile = make_profile(spec.profile, registry, spec.seed)
        self._rngs = {u: stream(spec.seed, "consumption", spec.profile, u) for u in UTILITIES}
        self.injector = AnomalyInjector(plan(spec, registry), self._profile, len(registry),
                                        spec.heartbeat)
        self._next = 0

    @property
    def total(self) -> int:
        """Readings per utility over the whole run."""
        return self.schedule.total

    def chunk(self, size: int) -> dict[str, Readings]:
        """The next `size` sequence positions (fewer at the end), for every utility."""
        g0 = self._next
        g1 = min(g0 + size, self.schedule.total)
        self._next = g1
        meter, end_ts = self.schedule.positions(g0, g1)
        start_ts = end_ts - self.spec.heartbeat
        out = {}
        for utility in UTILITIES:
            values = self._profile.draw(utility, self._rngs[utility], meter, end_ts,
                                        self.spec.heartbeat)
            units = np.rint(values * 10 ** DECIMALS[utility]).astype(np.int64)
            out[utility] = self.injector.apply(
                Readings(utility, g0, meter, start_ts, end_ts, units))
        return out

    @property
    def position(self) -> int:
        """Sequence position of the next chunk's first reading."""
        return self._next

    def chunks(self, size: int = DEFAULT_CHUNK) -> Iterator[dict[str, Readings]]:
        while self._next < self.schedule.total:
            yield self.chunk(size)


def iter_reading_batches(spec: SimSpec, registry: Registry | None = None,
                         chunk: int = DEFAULT_CHUNK) -> Iterator[tuple[str, pa.RecordBatch]]:
    """Clean readings (no faults; with spec.inject's anomalies) as (utility, RecordBatch).

    This is the entry point for the embedded engine, replay tests and notebooks: the
    same values the CLI writes, without encoding or a sink.
    """
    registry = registry or make_registry(spec)
    gen = ReadingGenerator(spec, registry)
    for readings in gen.chunks(chunk):
        for utility in UTILITIES:
            yield utility, readings[utility].to_arrow(registry)
