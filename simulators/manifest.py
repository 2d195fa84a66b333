"""manifest.json and ground_truth.parquet: what a run produced, for tests to compare with.

The manifest holds only facts derived from the arguments (no wall-clock times, no output
path), so the same arguments give a byte-identical manifest. Consumption sums are exact:
values are fixed-decimal, so they are summed as integers and printed as decimals.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

import auth_kappa
from simulators.encoding import format_units
from simulators.profiles import DECIMALS, UNITS
from simulators.registry import business_count
from simulators.spec import format_ts
from simulators.stream import Simulation

GROUND_TRUTH = "ground_truth.parquet"
MANIFEST = "manifest.json"
REGISTRY = "registry.parquet"


def build_manifest(sim: Simulation, pace: str, sink_facts: dict[str, Any]) -> dict[str, Any]:
    spec, f = sim.spec, sim.spec.faults
    utilities = {}
    for u, c in sim.counts.items():
        utilities[u] = {
            "unit": UNITS[u], "decimals": DECIMALS[u],
            "readings": c.readings, "valid_readings": c.valid_readings, "messages": c.messages,
            "late": c.late, "duplicates": c.duplicates, "malformed": c.malformed,
            "consumption_sum": format_units(c.valid_units, DECIMALS[u]),
            "consumption_sum_units": c.valid_units,
        }
    manifest = {
        "generator": "auth-kappa simulate",
        "version": auth_kappa.__version__,
        "arguments": {
            "meters": spec.meters, "seed": spec.seed, "profile": spec.profile,
            "format": sim.format.name, "start": format_ts(spec.start), "start_ts": spec.start,
            "duration_s": spec.duration, "end_ts": spec.end, "heartbeat_s": spec.heartbeat,
            "pace": pace,
            "late_fraction": f.late_fraction, "late_delay_s": f.late_delay,
            "duplicate_fraction": f.duplicate_fraction, "duplicate_delay_s": f.duplicate_delay,
            "malformed_fraction": f.malformed_fraction,
        },
        "registry": {"file": REGISTRY, "meters": spec.meters,
                     "business": business_count(spec.meters),
                     "household": spec.meters - business_count(spec.meters)},
        "utilities": utilities,
        "ground_truth": {"file": GROUND_TRUTH,
                         "rows": sum(c.late + c.duplicates + c.malformed
                                     for c in sim.counts.values())},
        "sink": sink_facts,
        "notes": "consumption_sum = exact sum of valid readings (late included, duplicate "
                 "copies and malformed messages excluded); times are UTC epoch seconds",
    }
    if spec.inject is not None:  # only with --inject, so older manifests stay byte-identical
        manifest["arguments"]["inject"] = spec.inject.as_dict()
        manifest["anomalies"] = [a.record(sim.registry) for a in sim.anomalies]
    return manifest


def write_outputs(sim: Simulation, out_dir: Path, pace: str, sink_facts: dict[str, Any]) -> dict[str, Any]:
    """Write ground_truth.parquet and manifest.json into out_dir; return the manifest."""
    out_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(sim.ground_truth.table(), out_dir / GROUND_TRUTH, compression="zstd")
    manifest = build_manifest(sim, pace, sink_facts)
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest
