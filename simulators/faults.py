"""Fault injection: late, duplicated and malformed messages, with a ground-truth record.

Per reading one uniform draw (its own stream per utility) decides its fate, so the
three fractions are exclusive and the choice never depends on chunking or sink:

- late: the reading leaves its place and is emitted `late_delay` of event time later,
  i.e. right after the last on-time message whose end_ts <= end_ts + late_delay.
- duplicate: the reading is emitted in place, and an exact copy `duplicate_delay` later.
- malformed: the reading's message is replaced in place by garbage (see encoding.py);
  it is no longer a valid reading.

Delayed messages wait in a small buffer across chunks. Ties are broken by (release
time, sequence position, kind), so the output order is a pure function of the spec.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from simulators.encoding import Format, Payload
from simulators.reading_batch import Readings
from simulators.registry import Registry
from simulators.rng import stream
from simulators.spec import FaultSpec

LATE, DUPLICATE, MALFORMED = "late", "duplicate", "malformed"
_KIND_ORDER = {LATE: 0, DUPLICATE: 1}

GROUND_TRUTH_SCHEMA = pa.schema([
    ("kind", pa.string()), ("utility", pa.string()),
    ("position", pa.int64()),  # index of the faulty message in the utility's output stream
    ("original_position", pa.int64()),  # duplicates: where the first copy was emitted
    ("clean_position", pa.int64()),  # index in the fault-free stream (tick-major)
    ("service_id", pa.string()), ("start_ts", pa.int64()), ("end_ts", pa.int64()),
    ("consumption", pa.float64()),  # the true value of the reading
    ("delay_s", pa.float64()),  # late / duplicate: event-time delay
    ("reason", pa.string()), ("raw", pa.binary()),  # malformed: why, and the bytes sent
])


def concat(parts: list[Payload]) -> Payload:
    """Concatenate payload pieces (arrays or tables) of one format."""
    if len(parts) == 1:
        return parts[0]
    if isinstance(parts[0], pa.Table):
        return pa.concat_tables(parts)
    return pa.concat_arrays(parts)


def take(payload: Payload, idx: np.ndarray) -> Payload:
    return payload.take(pa.array(idx, pa.int64()))


@dataclass
class Emission:
    """Messages of one utility in output order: what a sink writes for one chunk."""

    utility: str
    position: int  # output-stream index of the first message
    payload: Payload
    meter: np.ndarray  # registry index per message (the key is its service_id)
    emit_ts: np.ndarray  # event time at which each message is due, non-decreasing
    malformed: np.ndarray | None = None  # bool per message; None: no malformed message

    def __len__(self) -> int:
        return len(self.meter)

    def slice(self, lo: int, hi: int) -> Emission:
        return Emission(self.utility, self.position + lo, self.payload.slice(lo, hi - lo),
                        self.meter[lo:hi], self.emit_ts[lo:hi],
                        None if self.malformed is None else self.malformed[lo:hi])


@dataclass
class UtilityCounts:
    """What one utility's stream contains; the manifest's numbers."""

    readings: int = 0  # clean readings generated
    messages: int = 0  # messages emitted (readings + duplicate copies)
    late: int = 0
    duplicates: int = 0
    malformed: int = 0
    valid_units: int = 0  # exact sum of valid consumption, in 10**-decimals units

    @property
    def valid_readings(self) -> int:
        return self.readings - self.malformed


class GroundTruth:
    """Every injected fault, as rows of GROUND_TRUTH_SCHEMA."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._tables: list[pa.Table] = []

    def add(self, kind: str, utility: str, position: np.ndarray, readings: Readings,
            clean_position: np.ndarray, *, original_position: np.ndarray | None = None,
            delay: np.ndarray | None = None, reasons: list[str] | None = None,
            raw: list[bytes] | None = None) -> None:
        n = len(position)
        if n == 0:
            return
        none = pa.nulls(n)
        self._tables.append(pa.table({
            "kind": pa.array([kind] * n, pa.string()),
            "utility": pa.array([utility] * n, pa.string()),
            "position": pa.array(position, pa.int64()),
            "original_position": none.cast(pa.int64()) if original_position is None
            else pa.array(original_position, pa.int64()),
            "clean_position": pa.array(clean_position, pa.int64()),
            "service_id": self._registry.service_id.take(pa.array(readings.meter)),
            "start_ts": pa.array(readings.start_ts, pa.int64()),
            "end_ts": pa.array(readings.end_ts, pa.int64()),
            "consumption": pa.array(readings.consumption, pa.float64()),
            "delay_s": none.cast(pa.float64()) if delay is None else pa.array(delay, pa.float64()),
            "reason": none.cast(pa.string()) if reasons is None else pa.array(reasons, pa.string()),
            "raw": none.cast(pa.binary()) if raw is None else pa.array(raw, pa.binary()),
        }, schema=GROUND_TRUTH_SCHEMA))

    def table(self) -> pa.Table:
        """All faults, ordered by utility and output position (the order they were sent)."""
        if not self._tables:
            return GROUND_TRUTH_SCHEMA.empty_table()
        return pa.concat_tables(self._tables).sort_by(
            [("utility", "ascending"), ("position", "ascending")]).combine_chunks()


@dataclass
class _Delayed:
    """Messages waiting for their release time (sorted by release, g, kind)."""

    release: np.ndarray = field(default_factory=lambda: np.empty(0))
    g: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    kind: np.ndarray = field(default_factory=lambda: np.empty(0, np.int8))
    original_position: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    readings: Readings | None = None
    payload: Payload | None = None

    def __len__(self) -> int:
        return len(self.g)

    def subset(self, idx: np.ndarray) -> _Delayed:
        return _Delayed(self.release[idx], self.g[idx], self.kind[idx],
                        self.original_position[idx], self.readings.take(idx),
                        take(self.payload, idx))


def _join_readings(parts: list[Readings]) -> Readings:
    return Readings(parts[0].utility, -1, *(np.concatenate([getattr(p, name) for p in parts])
                                            for name in ("meter", "start_ts", "end_ts", "units")))


class FaultInjector:
    """Turns clean readings of one utility into the emitted message stream."""

    def __init__(self, utility: str, faults: FaultSpec, seed: int, fmt: Format,
                 ground_truth: GroundTruth) -> None:
        self.utility = utility
        self.faults = faults
        self.format = fmt
        self.ground_truth = ground_truth
        self.counts = UtilityCounts()
        self.position = 0
        self._fate_rng = stream(seed, "faults", "fate", utility)
        self._kind_rng = stream(seed, "faults", "malformed", utility)
        self._delayed = _Delayed()

    def apply(self, readings: Readings, next_end_ts: float | None) -> Emission:
        """Emit this chunk; next_end_ts is the end_ts of the next clean reading (None: end)."""
        f = self.faults
        n = len(readings)
        g = readings.positions
        payload = self.format.encode(readings)
        if not f.any:  # fast path: the stream is the clean sequence
            self.counts.readings += n
            self.counts.messages += n
            self.counts.valid_units += int(readings.units.sum())
            self.position += n
            return Emission(self.utility, self.position - n, payload, readings.meter,
                            readings.end_ts.astype(np.float64))
        u = self._fate_rng.random(n)
        cut_late = f.late_fraction
        cut_dup = cut_late + f.duplicate_fraction
        late = u < cut_late
        dup = (u >= cut_late) & (u < cut_dup)
        mal = (u >= cut_dup) & (u < cut_dup + f.malformed_fraction)

        mal_idx = np.flatnonzero(mal)
        reasons: list[str] = []
        raw: list[bytes] = []
        if len(mal_idx):
            draws = self._kind_rng.random((len(mal_idx), 2))
            bad, reasons, raw = self.format.corrupt(readings.take(mal_idx), draws)
            src = np.arange(n)
            src[mal_idx] = n + np.arange(len(mal_idx))
            payload = take(concat([payload, bad]), src)

        # Messages that stay in place, and messages that join the delayed buffer.
        kept = np.flatnonzero(~late)
        kept_payload = payload if len(kept) == n else take(payload, kept)
        late_idx, dup_idx = np.flatnonzero(late), np.flatnonzero(dup)
        fresh = np.concatenate([late_idx, dup_idx])
        kept_index_of_dup = np.searchsorted(kept, dup_idx)  # dup readings are kept
        d = self._delayed
        waiting = _Delayed(
            release=np.concatenate([d.release, readings.end_ts[late_idx] + f.late_delay,
                                    readings.end_ts[dup_idx] + f.duplicate_delay]),
            g=np.concatenate([d.g, g[fresh]]),
            kind=np.concatenate([d.kind, np.full(len(late_idx), 0, np.int8),
                                 np.full(len(dup_idx), 1, np.int8)]),
            original_position=np.concatenate([d.original_position,
                                              np.full(len(fresh), -1, np.int64)]),
            readings=_join_readings([r for r in (d.readings, readings.take(fresh)) if r is not None]),
            payload=concat([p for p in (d.payload, take(payload, fresh)) if p is not None]),
        )
        order = np.lexsort((waiting.kind, waiting.g, waiting.release))
        new_dup_at = len(d) + len(late_idx) + np.arange(len(dup_idx))  # before sorting
        waiting = waiting.subset(order)
        bound = np.inf if next_end_ts is None else next_end_ts
        n_rel = int(np.searchsorted(waiting.release, bound, side="left"))

        # Merge: a released message goes right after the kept messages with end_ts <= release.
        kept_end = readings.end_ts[kept]
        ins = np.searchsorted(kept_end, waiting.release[:n_rel], side="right")
        rel_pos = ins + np.arange(n_rel)
        kept_pos = np.arange(len(kept)) + np.searchsorted(ins, np.arange(len(kept)), side="right")
        base = self.position

        # Duplicates born in this chunk learn where their first copy went.
        where = np.empty(len(order), np.int64)
        where[order] = np.arange(len(order))
        waiting.original_position[where[new_dup_at]] = base + kept_pos[kept_index_of_dup]

        released = waiting.subset(np.arange(n_rel))
        self._delayed = waiting.subset(np.arange(n_rel, len(waiting)))

        total = len(kept) + n_rel
        src = np.empty(total, np.int64)
        src[kept_pos] = np.arange(len(kept))
        src[rel_pos] = len(kept) + np.arange(n_rel)
        out_payload = take(concat([kept_payload, released.payload]), src)
        meter = np.concatenate([readings.meter[kept], released.readings.meter])[src]
        emit_ts = np.concatenate([kept_end.astype(np.float64), released.release])[src]

        self._record(base, kept_pos, mal_idx, kept, readings, g, reasons, raw, released, rel_pos)
        malformed = None
        if len(mal_idx):  # malformed messages replace their reading in place (never delayed)
            malformed = np.zeros(total, bool)
            malformed[kept_pos[np.searchsorted(kept, mal_idx)]] = True
        c = self.counts
        c.readings += n
        c.messages += total
        c.late += len(late_idx)
        c.duplicates += len(dup_idx)
        c.malformed += len(mal_idx)
        c.valid_units += int(readings.units[~mal].sum())
        self.position += total
        return Emission(self.utility, base, out_payload, meter, emit_ts, malformed)

    def _record(self, base: int, kept_pos: np.ndarray, mal_idx: np.ndarray, kept: np.ndarray,
                readings: Readings, g: np.ndarray, reasons: list[str], raw: list[bytes],
                released: _Delayed, rel_pos: np.ndarray) -> None:
        gt = self.ground_truth
        gt.add(MALFORMED, self.utility, base + kept_pos[np.searchsorted(kept, mal_idx)],
               readings.take(mal_idx), g[mal_idx], reasons=reasons, raw=raw)
        late = released.kind == 0
        for kind, mask, delay in ((LATE, late, self.faults.late_delay),
                                  (DUPLICATE, ~late, self.faults.duplicate_delay)):
            idx = np.flatnonzero(mask)
            gt.add(kind, self.utility, base + rel_pos[idx], released.readings.take(idx),
                   released.g[idx], delay=np.full(len(idx), delay),
                   original_position=None if kind == LATE else released.original_position[idx])
