"""Semantic checks on typed readings, column at a time; each failure keeps its reason."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from auth_kappa.topology.decode import split_bad
from auth_kappa.topology.keys import uuid_keys
from auth_kappa.topology.partitioner import partitions_of
from auth_kappa.topology.quarantine import Rejected
from auth_kappa.topology.readings import Readings
from auth_kappa.topology.schema import UTILITIES

if TYPE_CHECKING:
    from auth_kappa.config import Config

MIN_TS = 946684800  # 2000-01-01T00:00:00Z: older is not a smart-meter reading
MAX_FUTURE = 900.0  # AUTH_MAX_FUTURE's default: 15 minutes of meter clock skew


@dataclass(frozen=True)
class Rules:
    max_consumption: float = 1e6      # per heartbeat, any utility: far above any real meter
    max_interval: int = 3600          # end_ts - start_ts
    min_ts: int = MIN_TS
    # end_ts this far ahead of the reference clock is quarantined ("future"): a meter's
    # skewed clock must not move event time. The reference is each row's record timestamp
    # (Message.timestamp, the archive's ingest_time), else `clock`, so replay agrees.
    max_future: float = MAX_FUTURE
    clock: Callable[[], float] = time.time

    @classmethod
    def from_config(cls, config: Config) -> Rules:
        return cls(max_future=config.max_future)


def validate(batch: Readings, rules: Rules = Rules()
             ) -> tuple[Readings, np.ndarray, list[Rejected]]:
    """Good readings with their meter keys ([n,2] uint64), and the rejected ones."""
    good, keys, rejected, _ = screen(batch, rules)
    return good, keys, rejected


def screen(batch: Readings, rules: Rules = Rules()
           ) -> tuple[Readings, np.ndarray, list[Rejected], np.ndarray]:
    """validate, plus which rows passed (a mask by row position; rejected rows come in row
    order): for a caller that maps rows back to where it found them (the archive's frame
    row numbers), so no position has to ride in another column."""
    keys, uuid_ok = uuid_keys(batch.service_id)
    if batch.utility not in UTILITIES:
        uuid_ok = np.zeros(len(batch), bool)
    with np.errstate(invalid="ignore"):
        checks = [
            (np.full(len(batch), batch.utility not in UTILITIES), "unknown utility"),
            (~uuid_ok, "service_id is not a lower-case uuid"),
            (batch.type_code < 0, "unknown meter type"),
            (batch.state_code < 0, "unknown state"),
            (~np.isfinite(batch.consumption), "consumption is not finite"),
            (batch.consumption < 0, "consumption is negative"),
            (batch.consumption > rules.max_consumption, "consumption is implausibly large"),
            (batch.end_ts <= batch.start_ts, "end_ts is not after start_ts"),
            (batch.end_ts - batch.start_ts > rules.max_interval, "reading interval too long"),
            (batch.start_ts < rules.min_ts, "timestamp before 2000 (ancient)"),
            (batch.end_ts > _reference(batch, rules) + rules.max_future, "future"),
        ]
    bad = np.zeros(len(batch), bool)
    for mask, _ in checks:
        bad |= mask
    good, rejected = split_bad(batch, checks)
    return good, keys[~bad], rejected, ~bad


def placed(batch: Readings, keys: np.ndarray, partitions: int
           ) -> tuple[Readings, np.ndarray, list[Rejected]]:
    """Readings on the partition Kafka's key partitioner gives their meter (key =
    service_id over `partitions`); the others are quarantined, with where they belong."""
    want = partitions_of(batch.service_id.tolist(), partitions)
    wrong = want != batch.partition
    if not wrong.any():
        return batch, keys, []
    reasons = [f"meter belongs on partition {w} of {partitions} (key = service_id), "
               f"arrived on {p}" for w, p in zip(want[wrong].tolist(),
                                               batch.partition[wrong].tolist(), strict=True)]
    from auth_kappa.topology.quarantine import reject_rows

    return (batch.take(np.flatnonzero(~wrong)), keys[~wrong],
            reject_rows(batch.take(np.flatnonzero(wrong)), reasons))


def _reference(batch: Readings, rules: Rules) -> np.ndarray:
    """Per row: its record timestamp where known, else the wall clock (read once)."""
    ref = batch.ref_ts
    unknown = np.isnan(ref)
    return np.where(unknown, rules.clock(), ref) if unknown.any() else ref
