"""Injected meter anomalies (`--inject leak=N,gap=N,spike=N`): ground truth for detectors.

Each anomalous meter gets exactly one anomaly, on one utility, at seeded times:

- leak (water): a continuous added flow of `rate_per_hour` gallons an hour (10-20,
  seeded, one decimal), spread evenly over every reading: each reading gets
  rate x heartbeat / 3600 gallons, rounded up to the 7th decimal (so every complete
  hour gets at least the rate) on top of its normal use. A leak starts on a clock hour;
  in a run with at least 30 complete hours it lasts a seeded 30-72 whole hours, in a
  shorter run it starts in the first half of the complete hours and runs to the end
  (a run without a complete hour leaks from its start).
- gap (any utility): the meter sends nothing with an event time (end_ts) in
  [start, end), a seeded 10-120 whole minutes at least a minute (or two heartbeats,
  if longer) inside the run, then resumes. The readings it did not send exist nowhere (not in the
  output, not in the manifest's counts); `missing_readings` says how many.
- spike (electricity or gas): one complete clock hour (UTC, in the second half of the
  run) in which every reading gets (factor - 1) x the meter's peak level added (factor
  5-10, seeded, one decimal; the peak level is the profile's noise-free mean at the
  meter's busiest minute of the week, at that date: for `seed` simply its mean). The
  hour holds its own use plus (factor - 1) x its busiest normal hour, so it is at least
  4x any normal hour of the meter and factor x its busiest one.

A complete hour is a clock hour in which every meter sends all its readings (it starts
at least one heartbeat after the run's start and ends by the run's end). The injection
changes readings before encoding and faults, so every sink and iter_reading_batches see
the same values, and the manifest's counts and sums include it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from auth_kappa.config import UTILITIES
from simulators.profiles import DECIMALS, Profile
from simulators.reading_batch import Readings
from simulators.registry import Registry
from simulators.rng import stream
from simulators.spec import GAP_MAX_S, GAP_MIN_S, SimSpec, complete_hours, gap_margin

LEAK, GAP, SPIKE = "leak", "gap", "spike"
_CODE = {LEAK: 1, GAP: 2, SPIKE: 3}
LEAK_RATE = (10.0, 20.0)  # gallons per hour: above any normal hour at night (README)
LEAK_MIN_HOURS, LEAK_MAX_HOURS = 30, 72
SPIKE_FACTOR = (5.0, 10.0)
SPIKE_UTILITIES: tuple[str, ...] = ("electricity", "gas")


@dataclass(frozen=True)
class Anomaly:
    """One injected anomaly; readings with start <= end_ts < stop are affected."""

    meter: int  # registry index
    utility: str
    kind: str
    start: int  # epoch seconds
    end: int  # when it stops (a leak running to the end of the run: the run's end)
    stop: float  # exclusive bound on end_ts (inf: to the end of the run, last reading too)
    rate_per_hour: float | None = None  # leak, gallons per hour
    factor: float | None = None  # spike
    missing_readings: int | None = None  # gap

    def record(self, registry: Registry) -> dict[str, Any]:
        """The manifest's row: service_id, utility, kind, start, end and the kind's size."""
        row: dict[str, Any] = {"service_id": registry.service_id[self.meter].as_py(),
                               "utility": self.utility, "kind": self.kind,
                               "start": self.start, "end": self.end}
        for name in ("rate_per_hour", "factor", "missing_readings"):
            if getattr(self, name) is not None:
                row[name] = getattr(self, name)
        return row


def _leaks(spec: SimSpec, meters: np.ndarray) -> list[Anomaly]:
    rng = stream(spec.seed, "inject", LEAK)
    first, hours = complete_hours(spec)
    end = math.floor(spec.end)
    out = []
    for m in meters.tolist():
        rate = round(float(rng.uniform(*LEAK_RATE)), 1)
        if hours >= LEAK_MIN_HOURS:
            length = int(rng.integers(LEAK_MIN_HOURS, min(hours, LEAK_MAX_HOURS) + 1))
            start = first + int(rng.integers(0, hours - length + 1)) * 3600
            out.append(Anomaly(m, "water", LEAK, start, start + length * 3600,
                               start + length * 3600, rate_per_hour=rate))
        else:
            start = first + int(rng.integers(0, hours // 2 + 1)) * 3600 if hours else spec.start
            out.append(Anomaly(m, "water", LEAK, start, end, math.inf, rate_per_hour=rate))
    return out


def _gaps(spec: SimSpec, registry: Registry, meters: np.ndarray) -> list[Anomaly]:
    rng = stream(spec.seed, "inject", GAP)
    margin = gap_margin(spec.heartbeat)
    room = math.floor(spec.end) - spec.start - 2 * margin
    out = []
    for m in meters.tolist():
        utility = UTILITIES[int(rng.integers(len(UTILITIES)))]
        length = int(rng.integers(GAP_MIN_S // 60, min(GAP_MAX_S, room) // 60 + 1)) * 60
        start = spec.start + margin + int(rng.integers(0, room - length + 1))
        base = spec.start + int(registry.offset_s[m])  # readings end at base + k*heartbeat
        missing = -(-(start + length - base) // spec.heartbeat) - -(-(start - base) // spec.heartbeat)
        out.append(Anomaly(m, utility, GAP, start, start + length, start + length,
                           missing_readings=int(missing)))
    return out


def _spikes(spec: SimSpec, meters: np.ndarray) -> list[Anomaly]:
    rng = stream(spec.seed, "inject", SPIKE)
    first, hours = complete_hours(spec)
    out = []
    for m in meters.tolist():
        utility = SPIKE_UTILITIES[int(rng.integers(len(SPIKE_UTILITIES)))]
        factor = round(float(rng.uniform(*SPIKE_FACTOR)), 1)
        start = first + int(rng.integers(hours // 2, hours)) * 3600
        out.append(Anomaly(m, utility, SPIKE, start, start + 3600, start + 3600, factor=factor))
    return out


def plan(spec: SimSpec, registry: Registry) -> list[Anomaly]:
    """Every anomaly of the run, in time order; [] without --inject.

    One seeded permutation of the fleet gives leak meters first, then gap, then spike
    meters, so no meter gets two anomalies (SimSpec has checked the fleet is big enough).
    """
    inject = spec.inject
    if inject is None or inject.total == 0:
        return []
    order = stream(spec.seed, "inject", "meters").permutation(len(registry))
    a, b = inject.leak, inject.leak + inject.gap
    out = (_leaks(spec, order[:a]) + _gaps(spec, registry, order[a:b])
           + _spikes(spec, order[b:b + inject.spike]))
    return sorted(out, key=lambda x: (x.start, x.kind, x.utility, x.meter))


@dataclass(frozen=True)
class _Table:
    """Per-meter lookup for one utility: which anomaly, when, and how large."""

    code: np.ndarray  # int8 per meter, 0 = none
    start: np.ndarray
    stop: np.ndarray
    add_units: np.ndarray  # leak: units added to each reading
    factor: np.ndarray  # spike


def leak_units(rate_per_hour: float, heartbeat: int) -> int:
    """Units (1e-7 gallons) per reading so every complete hour gets at least the rate."""
    per_hour = max(1, 3600 // heartbeat)
    total = round(rate_per_hour * 10) * 10 ** (DECIMALS["water"] - 1)
    return -(-total // per_hour)


class AnomalyInjector:
    """Applies a plan to chunks of clean readings (vectorised, chunking-independent)."""

    def __init__(self, anomalies: list[Anomaly], profile: Profile, meters: int,
                 heartbeat: int) -> None:
        self.anomalies = anomalies
        self._profile = profile
        self._heartbeat = heartbeat
        self._tables: dict[str, _Table] = {}
        for utility in UTILITIES:
            mine = [x for x in anomalies if x.utility == utility]
            if not mine:
                continue
            t = _Table(np.zeros(meters, np.int8), np.zeros(meters, np.int64),
                       np.zeros(meters, np.float64), np.zeros(meters, np.int64),
                       np.ones(meters, np.float64))
            for x in mine:
                t.code[x.meter] = _CODE[x.kind]
                t.start[x.meter] = x.start
                t.stop[x.meter] = x.stop
                if x.rate_per_hour is not None:
                    t.add_units[x.meter] = leak_units(x.rate_per_hour, heartbeat)
                if x.factor is not None:
                    t.factor[x.meter] = x.factor
            self._tables[utility] = t

    def apply(self, r: Readings) -> Readings:
        """These readings with the anomalies that fall in them (the same object if none)."""
        t = self._tables.get(r.utility)
        if t is None:
            return r
        idx = np.flatnonzero(t.code[r.meter])
        if len(idx):
            m, end_ts = r.meter[idx], r.end_ts[idx]
            idx = idx[(end_ts >= t.start[m]) & (end_ts < t.stop[m])]
        if not len(idx):
            return r
        code = t.code[r.meter[idx]]
        units = r.units.copy()
        leak = idx[code == _CODE[LEAK]]
        units[leak] += t.add_units[r.meter[leak]]
        spike = idx[code == _CODE[SPIKE]]
        if len(spike):
            m = r.meter[spike]
            level = self._profile.peak_level(r.utility, m, r.end_ts[spike], self._heartbeat)
            units[spike] += np.rint((t.factor[m] - 1) * level * 10 ** r.decimals).astype(np.int64)
        gap = idx[code == _CODE[GAP]]
        if not len(gap):
            return replace(r, units=units)
        keep = np.ones(len(r), bool)
        keep[gap] = False
        return replace(r, meter=r.meter[keep], start_ts=r.start_ts[keep],
                       end_ts=r.end_ts[keep], units=units[keep], g=r.positions[keep])
