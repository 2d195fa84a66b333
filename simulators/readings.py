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
from simulators.reading_batch import Readings
from simulators.registry import Registry, make_registry
from simulators.rng import stream
from simulators.spec import SimSpec

DEFAULT_CHUNK = 1 << 16




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
