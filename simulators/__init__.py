"""Deterministic smart-meter fleet simulator (`auth-kappa simulate`).

Public API (everything else is internal):

- SimSpec, FaultSpec, InjectSpec, parse_start, parse_inject: what to simulate
  (validated; UserError on mistakes). InjectSpec(leak, gap, spike) injects anomalies.
- make_registry(spec) -> Registry: the fleet (service_id, user_name, type, state, ...).
- iter_reading_batches(spec) -> (utility, pyarrow.RecordBatch) of clean readings in
  stream order, seed-format columns: the input for the embedded engine and tests.
- Simulation(spec, fmt).emissions(): the wire messages with faults, per utility and
  chunk, exactly what every sink receives; .ground_truth and .counts describe them.
- simulate(spec, sink, out_dir, ...): a whole run into a sink (FileSink, KafkaSink),
  writing registry.parquet, ground_truth.parquet and manifest.json.
"""

from simulators.faults import GROUND_TRUTH_SCHEMA, Emission, UtilityCounts
from simulators.pacing import Pacer, parse_pace
from simulators.profiles import DECIMALS, SEED_MAX, UNITS
from simulators.reading_batch import READING_SCHEMA, Readings
from simulators.readings import ReadingGenerator, iter_reading_batches
from simulators.registry import Registry, business_count, make_registry
from simulators.runner import simulate
from simulators.spec import FaultSpec, InjectSpec, SimSpec, parse_inject, parse_start
from simulators.states import STATES
from simulators.stream import Simulation

__all__ = [
    "DECIMALS", "GROUND_TRUTH_SCHEMA", "READING_SCHEMA", "SEED_MAX", "STATES", "UNITS",
    "Emission", "FaultSpec", "InjectSpec", "Pacer", "ReadingGenerator", "Readings", "Registry", "SimSpec",
    "Simulation", "UtilityCounts", "business_count", "iter_reading_batches", "make_registry",
    "parse_inject", "parse_pace", "parse_start", "simulate",
]
