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
        payload = self.format.encode(readings)
        if not self.faults.any:  # fast path: the stream is the clean sequence
            return self._clean(readings, payload)
        late, dup, mal = self._fates(len(readings))
        mal_idx = np.flatnonzero(mal)
        payload, reasons, raw = self._corrupt(readings, payload, mal_idx)
        # in place: on-time readings, duplicates' first copies and malformed messages
        kept = np.flatnonzero(~late)
        late_idx, dup_idx = np.flatnonzero(late), np.flatnonzero(dup)
        waiting, dup_slots = self._enqueue(readings, payload, late_idx, dup_idx)
        bound = np.inf if next_end_ts is None else next_end_ts
        n_rel = int(np.searchsorted(waiting.release, bound, side="left"))
        kept_pos, rel_pos = _interleave(readings.end_ts[kept], waiting.release[:n_rel])
        base = self.position
        # duplicates born in this chunk learn where their first copy went
        waiting.original_position[dup_slots] = base + kept_pos[np.searchsorted(kept, dup_idx)]
        released = waiting.subset(np.arange(n_rel))
        self._delayed = waiting.subset(np.arange(n_rel, len(waiting)))

        out = self._merge(readings, payload, kept, kept_pos, released, rel_pos)
        mal_at = kept_pos[np.searchsorted(kept, mal_idx)]   # never delayed: kept in place
        if len(mal_idx):
            out.malformed = np.zeros(len(out), bool)
            out.malformed[mal_at] = True
        self._record(base + mal_at, readings.take(mal_idx), readings.positions[mal_idx],
                     reasons, raw, released, base + rel_pos)
        c = self.counts
        c.readings += len(readings)
        c.messages += len(out)
        c.late += len(late_idx)
        c.duplicates += len(dup_idx)
        c.malformed += len(mal_idx)
        c.valid_units += int(readings.units[~mal].sum())
        self.position += len(out)
        return out

    def _clean(self, readings: Readings, payload: Payload) -> Emission:
        n = len(readings)
        self.counts.readings += n
        self.counts.messages += n
        self.counts.valid_units += int(readings.units.sum())
        self.position += n
        return Emission(self.utility, self.position - n, payload, readings.meter,
                        readings.end_ts.astype(np.float64))

    def _fates(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One uniform draw per reading: late, duplicated or malformed (exclusive)."""
        f = self.faults
        u = self._fate_rng.random(n)
        cut_late = f.late_fraction
        cut_dup = cut_late + f.duplicate_fraction
        return (u < cut_late, (u >= cut_late) & (u < cut_dup),
                (u >= cut_dup) & (u < cut_dup + f.malformed_fraction))

    def _corrupt(self, readings: Readings, payload: Payload, mal_idx: np.ndarray
                 ) -> tuple[Payload, list[str], list[bytes]]:
        """The payload with each malformed reading's message replaced by garbage, in place;
        why each is malformed and the bytes sent."""
        if not len(mal_idx):
            return payload, [], []
        draws = self._kind_rng.random((len(mal_idx), 2))
        bad, reasons, raw = self.format.corrupt(readings.take(mal_idx), draws)
        n = len(readings)
        src = np.arange(n)
        src[mal_idx] = n + np.arange(len(mal_idx))
        return take(concat([payload, bad]), src), reasons, raw

    def _enqueue(self, readings: Readings, payload: Payload, late_idx: np.ndarray,
                 dup_idx: np.ndarray) -> tuple[_Delayed, np.ndarray]:
        """The delayed buffer with this chunk's late readings and duplicate copies, sorted
        by (release, g, kind); and where the new duplicates landed in it."""
        f, d = self.faults, self._delayed
        fresh = np.concatenate([late_idx, dup_idx])
        waiting = _Delayed(
            release=np.concatenate([d.release, readings.end_ts[late_idx] + f.late_delay,
                                    readings.end_ts[dup_idx] + f.duplicate_delay]),
            g=np.concatenate([d.g, readings.positions[fresh]]),
            kind=np.concatenate([d.kind, np.full(len(late_idx), 0, np.int8),
                                 np.full(len(dup_idx), 1, np.int8)]),
            original_position=np.concatenate([d.original_position,
                                              np.full(len(fresh), -1, np.int64)]),
            readings=_join_readings([r for r in (d.readings, readings.take(fresh)) if r is not None]),
            payload=concat([p for p in (d.payload, take(payload, fresh)) if p is not None]),
        )
        order = np.lexsort((waiting.kind, waiting.g, waiting.release))
        where = np.empty(len(order), np.int64)
        where[order] = np.arange(len(order))
        new_dups = len(d) + len(late_idx) + np.arange(len(dup_idx))  # before sorting
        return waiting.subset(order), where[new_dups]

    def _merge(self, readings: Readings, payload: Payload, kept: np.ndarray,
               kept_pos: np.ndarray, released: _Delayed, rel_pos: np.ndarray) -> Emission:
        """The kept messages and the released ones, each at its output position."""
        total = len(kept) + len(released)
        kept_payload = payload if len(kept) == len(readings) else take(payload, kept)
        src = np.empty(total, np.int64)
        src[kept_pos] = np.arange(len(kept))
        src[rel_pos] = len(kept) + np.arange(len(released))
        out_payload = take(concat([kept_payload, released.payload]), src)
        meter = np.concatenate([readings.meter[kept], released.readings.meter])[src]
        emit_ts = np.concatenate([readings.end_ts[kept].astype(np.float64),
                                  released.release])[src]
        return Emission(self.utility, self.position, out_payload, meter, emit_ts)

    def _record(self, mal_position: np.ndarray, malformed: Readings, mal_g: np.ndarray,
                reasons: list[str], raw: list[bytes], released: _Delayed,
                rel_position: np.ndarray) -> None:
        gt = self.ground_truth
        gt.add(MALFORMED, self.utility, mal_position, malformed, mal_g, reasons=reasons,
               raw=raw)
        late = released.kind == 0
        for kind, mask, delay in ((LATE, late, self.faults.late_delay),
                                  (DUPLICATE, ~late, self.faults.duplicate_delay)):
            idx = np.flatnonzero(mask)
            gt.add(kind, self.utility, rel_position[idx], released.readings.take(idx),
                   released.g[idx], delay=np.full(len(idx), delay),
                   original_position=None if kind == LATE else released.original_position[idx])


def _interleave(kept_end: np.ndarray, release: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Output positions of the kept messages and of the released ones: a released message
    goes right after the kept messages with end_ts <= its release time."""
    ins = np.searchsorted(kept_end, release, side="right")
    rel_pos = ins + np.arange(len(release))
    kept_pos = np.arange(len(kept_end)) + np.searchsorted(ins, np.arange(len(kept_end)),
                                                          side="right")
    return kept_pos, rel_pos
