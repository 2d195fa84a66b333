"""The emitted message streams: clean readings -> encoding -> faults, chunk by chunk.

`Simulation` is the single producer of what any sink receives, so files, Kafka (and
later S3 or frames) get the same messages in the same order for the same spec.
"""

from __future__ import annotations

from collections.abc import Iterator

from auth_kappa.config import UTILITIES
from simulators.anomalies import Anomaly
from simulators.encoding import make_format
from simulators.faults import Emission, FaultInjector, GroundTruth, UtilityCounts
from simulators.readings import DEFAULT_CHUNK, ReadingGenerator
from simulators.registry import Registry, make_registry
from simulators.spec import SimSpec


class Simulation:
    """One run: registry, clean readings, encoding and fault injection for every utility."""

    def __init__(self, spec: SimSpec, fmt: str = "csv", registry: Registry | None = None) -> None:
        self.spec = spec
        self.registry = registry if registry is not None else make_registry(spec)
        self.generator = ReadingGenerator(spec, self.registry)
        self.format = make_format(fmt, self.registry)
        self.ground_truth = GroundTruth(self.registry)
        self.injectors = {u: FaultInjector(u, spec.faults, spec.seed, self.format, self.ground_truth)
                          for u in UTILITIES}

    @property
    def readings_per_utility(self) -> int:
        return self.generator.total

    @property
    def anomalies(self) -> list[Anomaly]:
        """The injected anomalies (--inject), in time order."""
        return self.generator.injector.anomalies

    @property
    def counts(self) -> dict[str, UtilityCounts]:
        return {u: inj.counts for u, inj in self.injectors.items()}

    def emissions(self, chunk: int = DEFAULT_CHUNK) -> Iterator[dict[str, Emission]]:
        """Per chunk of `chunk` sequence positions: the messages of each utility, in order.

        The last chunk also releases every message still delayed, so nothing is dropped.
        """
        schedule = self.generator.schedule
        for readings in self.generator.chunks(chunk):
            nxt = self.generator.position  # not len(): a gap may have removed readings
            next_end = schedule.end_ts_at(nxt) if nxt < schedule.total else None
            yield {u: self.injectors[u].apply(readings[u], next_end) for u in UTILITIES}
