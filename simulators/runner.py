"""Run a simulation into a sink: registry, paced messages, ground truth and manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simulators.manifest import REGISTRY, write_outputs
from simulators.pacing import Pacer, paced, parse_pace
from simulators.progress import Progress
from simulators.readings import DEFAULT_CHUNK
from simulators.registry import write_registry
from simulators.sinks import Sink
from simulators.spec import SimSpec
from simulators.stream import Simulation


def simulate(spec: SimSpec, sink: Sink, out_dir: Path, fmt: str = "csv", pace: str = "max",
             progress: Progress | None = None, chunk: int | None = None) -> dict[str, Any]:
    """Generate the whole run into `sink`; write registry, ground truth and manifest to out_dir.

    Returns the manifest. The sink is closed even on errors, so files are complete up
    to the failure and Kafka has flushed what it accepted.
    """
    factor = parse_pace(pace)
    sim = Simulation(spec, fmt)
    # Paced runs go one heartbeat of meters at a time so nothing is generated far ahead.
    size = chunk or (DEFAULT_CHUNK if factor is None else max(1, min(spec.meters, DEFAULT_CHUNK)))
    progress = progress or Progress(0, enabled=False)
    progress.total = 3 * sim.readings_per_utility
    sink.open(sim)  # first: an unreachable service leaves nothing half-written
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_registry(sim.registry, out_dir / REGISTRY)
        pacer = Pacer(factor, spec.start) if factor else None
        for emission in paced(sim.emissions(size), pacer):
            sink.write(emission)
            progress.add(len(emission))
    finally:
        facts = sink.close()
    return write_outputs(sim, out_dir, pace, facts)
