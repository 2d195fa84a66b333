"""A roll: consecutive messages of one partition that become one set of archive objects.

Pure and synchronous (no I/O), so the Kafka archiver, the embedded engine and the
simulator's history sink cut, name and encode objects with exactly the same code.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from auth_kappa.archive import layout
from auth_kappa.archive.parquet_io import to_parquet
from auth_kappa.archive.records import split_messages
from auth_kappa.topology.decode import MessageBatch
from auth_kappa.topology.validate import Rules

DECODE_BATCH = 10_000   # decode is ~1.8x faster per message in batches of this size


@dataclass
class Sealed:
    """A roll ready to upload: its objects, and what the progress record will say after."""

    topic: str
    partition: int
    first: int
    last: int
    objects: list[tuple[str, bytes]]
    nbytes: int                 # raw message bytes it covers (the buffer bound counts these)
    rows: int
    quarantined: int
    high: int | None            # highest end_ts archived in the roll
    epoch: int = 0              # assignment it was read under; stale ones are dropped


@dataclass
class Roll:
    utility: str
    topic: str
    partition: int
    until: int | None = None    # a redo of a pending roll ends exactly at this offset
    epoch: int = 0
    rules: Rules | None = None  # validation (AUTH_MAX_FUTURE): the same as the workers'
    values: list[bytes] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    timestamps: list[int] = field(default_factory=list)
    nbytes: int = 0
    opened: float = field(default_factory=time.monotonic)

    def __len__(self) -> int:
        return len(self.offsets)

    def add(self, value: bytes, offset: int, timestamp_ms: int) -> None:
        if not self.offsets:
            self.opened = time.monotonic()
        self.values.append(value or b"")
        self.offsets.append(offset)
        self.timestamps.append(timestamp_ms)
        self.nbytes += len(value or b"") + 64

    def extend(self, batch: MessageBatch) -> None:
        """A fetch's messages of this partition, in offset order (add, without a Python
        step per message)."""
        if not len(batch):
            return
        if not self.offsets:
            self.opened = time.monotonic()
        values = batch.values if None not in batch.values else \
            [v or b"" for v in batch.values]
        self.values.extend(values)
        self.offsets.extend(batch.offset.tolist())
        ms = np.where(np.isnan(batch.timestamp), -1, np.round(batch.timestamp * 1000))
        self.timestamps.extend(ms.astype(np.int64).tolist())
        self.nbytes += sum(map(len, values)) + 64 * len(values)

    def due(self, roll_bytes: int, roll_seconds: float, now: float | None = None) -> bool:
        if not self.offsets:
            return False
        if self.until is not None:       # a redo keeps the crashed attempt's boundaries
            return self.offsets[-1] >= self.until
        now = time.monotonic() if now is None else now
        return self.nbytes >= roll_bytes or now - self.opened >= roll_seconds

    def seal(self) -> Sealed:
        n = len(self.offsets)
        stamps = np.array(self.timestamps, np.int64)
        messages = MessageBatch(self.values, np.full(n, self.partition, np.int32),
                                np.array(self.offsets, np.int64), np.full(n, np.nan))
        first, last = self.offsets[0], self.offsets[-1]
        parts = [split_messages(self.utility, self.topic, messages.slice(lo, lo + DECODE_BATCH),
                                stamps[lo:lo + DECODE_BATCH], self.rules)
                 for lo in range(0, n, DECODE_BATCH)]
        archive = pa.concat_tables([a for a, _ in parts])
        quarantine = pa.concat_tables([q for _, q in parts])
        objects = encode_objects(self.utility, self.topic, self.partition, first, last,
                                 archive, quarantine)
        high = int(pc.max(archive["end_ts"]).as_py()) if archive.num_rows else None
        return Sealed(self.topic, self.partition, first, last, objects, self.nbytes,
                      archive.num_rows, quarantine.num_rows, high, self.epoch)


def encode_objects(utility: str, topic: str, partition: int, first: int, last: int,
                   archive: pa.Table, quarantine: pa.Table) -> list[tuple[str, bytes]]:
    """One Parquet object per event hour (archive) and per ingest hour (quarantine)."""
    out = []
    for hour, rows in _by_hour(archive, archive["end_ts"].to_numpy() if archive.num_rows
                               else np.zeros(0, np.int64)):
        out.append((layout.data_key(utility, hour, topic, partition, first, last),
                    to_parquet(rows)))
    if quarantine.num_rows:
        secs = quarantine["ingest_time"].cast(pa.int64()).to_numpy() // 1000
        for hour, rows in _by_hour(quarantine, secs):
            out.append((layout.quarantine_key(utility, hour, topic, partition, first, last),
                        to_parquet(rows)))
    return out


def _by_hour(table: pa.Table, seconds: np.ndarray) -> list[tuple[int, pa.Table]]:
    if not table.num_rows:
        return []
    hours = seconds // 3600 * 3600
    uniq = np.unique(hours)
    if len(uniq) == 1:
        return [(int(uniq[0]), table)]
    order = np.argsort(hours, kind="stable")   # offset order kept inside each hour
    sorted_hours = hours[order]
    bounds = np.searchsorted(sorted_hours, uniq, side="left").tolist() + [len(order)]
    taken = table.take(pa.array(order))
    return [(int(h), taken.slice(bounds[i], bounds[i + 1] - bounds[i]))
            for i, h in enumerate(uniq)]


@dataclass
class Progress:
    """archive/_progress/<topic>/<partition>.json: how far the archive of a partition is."""

    next_offset: int = 0
    high: int | None = None
    pending: tuple[int, int] | None = None

    def to_bytes(self) -> bytes:
        return json.dumps({"next_offset": self.next_offset, "high": self.high,
                           "pending": list(self.pending) if self.pending else None},
                          sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Progress:
        d = json.loads(data)
        pending = d.get("pending")
        return cls(int(d["next_offset"]), d.get("high"), tuple(pending) if pending else None)

    def after(self, sealed: Sealed) -> Progress:
        highs = [h for h in (self.high, sealed.high) if h is not None]
        return Progress(sealed.last + 1, max(highs) if highs else None, None)
