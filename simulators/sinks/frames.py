"""Kafka frames sink (`--to kafka --frame-size N`): up to N readings per Kafka message.

A frame is an Arrow IPC stream made by `auth_kappa.topology.frames.encode_frame` (the
seven seed columns, lz4 body compression): what a data concentrator would send, and
the format the workers' decoder reads next to single CSV/JSON messages.

- Content: the same messages, in the same order, as the single-message sink sends,
  parsed back from their CSV/JSON text with Arrow (so a value in a frame is exactly
  `float(text)` of its line). Late and duplicate readings stay rows of frames, in the
  place the stream puts them.
- Partitioning: readings are grouped by the Kafka partition of their service_id
  (murmur2, as the single-message sink's key would place them), and every frame goes
  to one explicit partition, so a meter keeps one partition and its readings stay in
  stream order. A frame holds many meters, so it has **no key** (key = None): a key
  would name one meter of hundreds, and compaction or key-based routing on it would
  be wrong.
- Malformed messages stay single messages, keyed by the service_id of the reading they
  replaced, on the same explicit partition. They are sent at once while the readings
  around them wait for their frame to fill, so a malformed message may arrive before
  readings that preceded it in the file; it is rejected anyway, and no reading moves.
- A frame leaves when it has N readings; the rest leaves at the end of the run, so
  frame boundaries depend only on the arguments (not on chunking or pace). With
  `--pace`, a reading may wait up to one frame's worth of its partition's readings.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson

from auth_kappa.errors import UserError
from auth_kappa.topology.frames import FRAME_SCHEMA, encode_frame
from auth_kappa.topology.partitioner import partitions_of
from simulators.faults import Emission
from simulators.sinks.files import lines_bytes
from simulators.sinks.kafka import KafkaSink
from simulators.stream import Simulation

# Kafka's default message.max.bytes is ~1 MB; a frame row is ~40 bytes after lz4.
MAX_FRAME_SIZE = 10_000


def check_frame_size(n: int) -> int:
    if not 1 <= n <= MAX_FRAME_SIZE:
        raise UserError(f"--frame-size must be between 1 and {MAX_FRAME_SIZE:,} readings "
                        f"(Kafka's default 1 MB message limit), got {n}")
    return n


def parse_lines(payload: pa.Array, fmt: str) -> pa.Table:
    """Valid CSV or JSON messages as a FRAME_SCHEMA table, in order."""
    if len(payload) == 0:
        return FRAME_SCHEMA.empty_table()
    data = pa.BufferReader(pa.py_buffer(lines_bytes(payload)))
    if fmt == "csv":
        table = pacsv.read_csv(
            data,
            read_options=pacsv.ReadOptions(column_names=FRAME_SCHEMA.names,
                                           block_size=64 << 20),
            parse_options=pacsv.ParseOptions(quote_char=False, escape_char=False),
            convert_options=pacsv.ConvertOptions(
                column_types={f.name: f.type for f in FRAME_SCHEMA}, strings_can_be_null=False))
    else:
        table = pajson.read_json(
            data, read_options=pajson.ReadOptions(block_size=64 << 20),
            parse_options=pajson.ParseOptions(explicit_schema=FRAME_SCHEMA,
                                               unexpected_field_behavior="error"))
    table = table.select(FRAME_SCHEMA.names).cast(FRAME_SCHEMA)
    if table.num_rows != len(payload):
        raise AssertionError(f"parsed {table.num_rows} readings from {len(payload)} messages")
    return table


class FrameKafkaSink(KafkaSink):
    """KafkaSink that packs readings into frames of `frame_size`, one partition each."""

    def __init__(self, bootstrap: str, frame_size: int, **kwargs: Any) -> None:
        super().__init__(bootstrap, **kwargs)
        self.frame_size = check_frame_size(frame_size)
        self._format = "csv"
        self._partition: dict[str, np.ndarray] = {}          # utility -> partition per meter
        self._pending: dict[tuple[str, int], list[pa.Table]] = {}
        self._pending_rows: dict[tuple[str, int], int] = {}
        self.frames = dict.fromkeys(self.topics, 0)
        self.frame_readings = dict.fromkeys(self.topics, 0)
        self.singles = dict.fromkeys(self.topics, 0)

    def open(self, sim: Simulation) -> None:
        super().open(sim)
        self._format = sim.format.name
        keys = self._keys.tolist()
        meta = self._producer.list_topics(timeout=15.0).topics
        for u, topic in self.topics.items():
            n = len(meta[topic].partitions) if topic in meta else self.partitions
            self._partition[u] = partitions_of(keys, n)

    def _send(self, topic: str, value: bytes, key: bytes | None, partition: int) -> None:
        producer = self._producer
        while True:
            try:
                producer.produce(topic, value, key, partition=partition)
                break
            except BufferError:  # local queue full: let librdkafka drain, then retry
                producer.poll(0.05)
        self.produced += 1

    def write(self, emission: Emission) -> None:
        u = emission.utility
        topic = self.topics[u]
        part = self._partition[u][emission.meter]
        payload = emission.payload
        if emission.malformed is not None and emission.malformed.any():
            bad = np.flatnonzero(emission.malformed)
            values = payload.take(pa.array(bad)).to_pylist()
            for i, value in zip(bad.tolist(), values, strict=True):
                self._send(topic, value, self._keys[emission.meter[i]], int(part[i]))
            self.singles[u] += len(bad)
            good = np.flatnonzero(~emission.malformed)
            payload, part = payload.take(pa.array(good)), part[good]
        table = parse_lines(payload, self._format)
        order = np.argsort(part, kind="stable")  # grouped by partition, stream order within
        table = table.take(pa.array(order))
        counts = np.bincount(part, minlength=int(part.max(initial=-1)) + 1)
        lo = 0
        for p, n in enumerate(counts.tolist()):
            if n:
                self._add(u, p, table.slice(lo, n))
            lo += n
        self._producer.poll(0)

    def _add(self, utility: str, partition: int, rows: pa.Table) -> None:
        slot = (utility, partition)
        self._pending.setdefault(slot, []).append(rows)
        total = self._pending_rows.get(slot, 0) + rows.num_rows
        self._pending_rows[slot] = total
        if total < self.frame_size:
            return
        table = pa.concat_tables(self._pending[slot]).combine_chunks()
        full = total // self.frame_size * self.frame_size
        for lo in range(0, full, self.frame_size):
            self._frame(utility, partition, table.slice(lo, self.frame_size))
        rest = table.slice(full)
        self._pending[slot] = [rest] if rest.num_rows else []
        self._pending_rows[slot] = rest.num_rows

    def _frame(self, utility: str, partition: int, rows: pa.Table) -> None:
        rows = rows.take(pa.array(np.arange(rows.num_rows)))  # fresh buffers: same bytes
        self._send(self.topics[utility], encode_frame(rows), None, partition)
        self.frames[utility] += 1
        self.frame_readings[utility] += rows.num_rows

    def close(self) -> dict[str, Any]:
        if self._producer is not None:
            for (utility, partition), parts in sorted(self._pending.items()):
                if parts:
                    self._frame(utility, partition, pa.concat_tables(parts).combine_chunks())
            self._pending.clear()
            self._pending_rows.clear()
        facts = super().close()
        facts["frames"] = {
            "frame_size": self.frame_size, "key": None,
            "frames": dict(self.frames), "frame_readings": dict(self.frame_readings),
            "single_messages": dict(self.singles),
            "kafka_messages": {u: self.frames[u] + self.singles[u] for u in self.topics},
        }
        return facts
