"""Messages ► archive rows and quarantine rows, with the topology's own decode and validate.

"Malformed" must mean the same thing in the archive as in the stream, so this module
owns no parsing rule: whatever auth_kappa.topology.decode/validate reject is quarantined
here with the same reason, and everything they accept is archived (late and duplicate
readings included: lateness and dedup are the stream's business, not the archive's).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from auth_kappa.topology.decode import Message, MessageBatch, decode, decode_table
from auth_kappa.topology.schema import METER_TYPES, STATES
from auth_kappa.topology.validate import Rules, screen

ARCHIVE_SCHEMA = pa.schema([
    ("service_id", pa.string()), ("user_name", pa.string()), ("type", pa.string()),
    ("start_ts", pa.int64()), ("state", pa.string()), ("consumption", pa.float64()),
    ("end_ts", pa.int64()),
    ("topic", pa.string()), ("partition", pa.int32()), ("offset", pa.int64()),
    ("row", pa.int32()),                       # row inside a frame message; 0 for single ones
    ("ingest_time", pa.timestamp("ms", tz="UTC")),  # Kafka record timestamp
])
QUARANTINE_SCHEMA = pa.schema([
    ("topic", pa.string()), ("partition", pa.int32()), ("offset", pa.int64()),
    ("row", pa.int32()),                       # -1: the whole message was rejected
    ("ingest_time", pa.timestamp("ms", tz="UTC")),
    ("reason", pa.string()), ("raw", pa.binary()),
])
_TYPES = pa.array(METER_TYPES, pa.string())
_STATES = pa.array(STATES, pa.string())


def split_messages(utility: str, topic: str, messages: Sequence[Message] | MessageBatch,
                   timestamps_ms: np.ndarray, rules: Rules | None = None
                   ) -> tuple[pa.Table, pa.Table]:
    """(archive rows, quarantine rows) for messages of ONE partition in offset order."""
    rules = rules or Rules()
    if not len(messages):
        return ARCHIVE_SCHEMA.empty_table(), QUARANTINE_SCHEMA.empty_table()
    columns = MessageBatch.of(messages)
    partition = int(columns.partition[0])
    msg_offsets = columns.offset
    timestamps_ms = np.asarray(timestamps_ms, np.int64)
    # the record timestamp is the reference clock for "future", as in the live worker
    # (which, for a record without one, -1, uses the wall clock: NaN here does the same)
    missing = np.isnan(columns.timestamp)
    if missing.any():
        known = np.where(timestamps_ms > 0, timestamps_ms / 1000, np.nan)
        columns = MessageBatch(columns.values, columns.partition, msg_offsets,
                               np.where(missing, known, columns.timestamp))
    batch, rejects = decode(utility, columns)
    n = len(batch)
    offsets = batch.offset
    idx = np.arange(n)
    starts = np.ones(n, bool)
    starts[1:] = offsets[1:] != offsets[:-1]
    row = (idx - np.maximum.accumulate(np.where(starts, idx, 0))).astype(np.int32)
    good, _, bad, ok = screen(batch, rules)
    pos, bad_pos = np.flatnonzero(ok), np.flatnonzero(~ok)   # rows by position
    ts = timestamps_ms[np.searchsorted(msg_offsets, offsets[pos])]
    archive = pa.table({
        "service_id": pa.array(good.service_id).cast(pa.string()),
        "user_name": pa.array(good.user_name, pa.string()),
        "type": _TYPES.take(pa.array(good.type_code.astype(np.int32))),
        "start_ts": pa.array(good.start_ts, pa.int64()),
        "state": _STATES.take(pa.array(good.state_code.astype(np.int32))),
        "consumption": pa.array(good.consumption, pa.float64()),
        "end_ts": pa.array(good.end_ts, pa.int64()),
        "topic": pa.array(np.full(len(pos), topic, object), pa.string()),
        "partition": pa.array(np.full(len(pos), partition, np.int32)),
        "offset": pa.array(offsets[pos]),
        "row": pa.array(row[pos]),
        "ingest_time": pa.array(ts, pa.timestamp("ms", tz="UTC")),
    }, schema=ARCHIVE_SCHEMA)
    q_off, q_row, q_reason, q_raw = [], [], [], []
    for r in rejects:                      # whole messages (bad CSV, unreadable frame, ...)
        q_off.append(r.offset)
        q_row.append(-1)
        q_reason.append(r.reason)
        q_raw.append(r.raw)
    for at, r in zip(bad_pos.tolist(), bad, strict=True):   # decoded rows failing validation
        q_off.append(int(offsets[at]))
        q_row.append(int(row[at]))
        q_reason.append(r.reason)
        q_raw.append(r.raw)
    q_off_arr = np.array(q_off, np.int64)
    order = np.lexsort((np.array(q_row, np.int64), q_off_arr)) if q_off else np.zeros(0, int)
    q_ts = timestamps_ms[np.searchsorted(msg_offsets, q_off_arr)] if q_off else []
    quarantine = pa.table({
        "topic": pa.array([topic] * len(q_off), pa.string()),
        "partition": pa.array(np.full(len(q_off), partition, np.int32)),
        "offset": pa.array(q_off_arr[order]),
        "row": pa.array(np.array(q_row, np.int32)[order]),
        "ingest_time": pa.array(np.asarray(q_ts, np.int64)[order],
                                pa.timestamp("ms", tz="UTC")),
        "reason": pa.array([q_reason[i] for i in order], pa.string()),
        "raw": pa.array([bytes(q_raw[i]) for i in order], pa.binary()),
    }, schema=QUARANTINE_SCHEMA)
    return archive, quarantine


def validated_rows(utility: str, table: pa.Table, rules: Rules | None = None
                   ) -> tuple[np.ndarray, list[tuple[int, str, bytes]]]:
    """For typed readings (FRAME_SCHEMA rows): the rows the topology accepts (bool mask),
    and (row, reason, raw) for the rest; the frame's checks (decode_table) + validate decide."""
    n = table.num_rows
    if not n:
        return np.zeros(0, bool), []
    try:
        batch = decode_table(utility, table, np.zeros(n, np.int32), np.zeros(n, np.int64))
    except ValueError as exc:   # the whole table is unreadable: every row, with that reason
        return np.zeros(n, bool), [(i, str(exc), b"") for i in range(n)]
    _, _, bad, ok = screen(batch, rules or Rules())
    return ok, [(at, r.reason, r.raw) for at, r in
                zip(np.flatnonzero(~ok).tolist(), bad, strict=True)]
