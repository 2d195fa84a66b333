"""Frames: many readings in one message, as a data concentrator sends them (Arrow IPC stream).

A frame is recognised by the Arrow IPC continuation marker at its start, so one topic
can carry single CSV/JSON readings and frames side by side.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from auth_kappa.topology.schema import CSV_FIELDS

MAGIC = b"\xff\xff\xff\xff"
FRAME_SCHEMA = pa.schema([
    ("service_id", pa.string()), ("user_name", pa.string()), ("type", pa.string()),
    ("start_ts", pa.int64()), ("state", pa.string()), ("consumption", pa.float64()),
    ("end_ts", pa.int64()),
])


def is_frame(value: bytes) -> bool:
    return value[:4] == MAGIC


def encode_frame(readings: pd.DataFrame | pa.Table | pa.RecordBatch,
                 compression: str | None = None) -> bytes:
    """Arrow IPC stream of the seven reading columns.

    No body compression by default: Kafka compresses the producer's batches already, and
    decompressing each small frame again cost ~80 us here (8x the rest of the read).
    """
    if isinstance(readings, pd.DataFrame):
        table = pa.Table.from_pandas(readings[list(CSV_FIELDS)], schema=FRAME_SCHEMA,
                                     preserve_index=False)
    else:
        table = readings if isinstance(readings, pa.Table) else pa.Table.from_batches([readings])
    return write_ipc(table, compression)


def write_ipc(table: pa.Table, compression: str | None = "lz4") -> bytes:
    """Any table as one Arrow IPC stream message (frames, and the final-windows topic)."""
    sink = pa.BufferOutputStream()
    options = ipc.IpcWriteOptions(compression=compression)
    with ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def read_ipc(value: bytes) -> pa.Table:
    return ipc.open_stream(pa.py_buffer(value)).read_all()


REFERENCE = "ingest_time"   # optional column: a replay's per-row record timestamps


def decode_frame(value: bytes) -> pa.Table:
    """The frame's readings; raises ValueError with a short reason when it is not valid."""
    return decode_frame_with_reference(value)[0]


def decode_frame_with_reference(value: bytes) -> tuple[pa.Table, np.ndarray | None]:
    """The frame's readings, and its optional ingest_time column as epoch seconds (float,
    NaN where null): the reference clock replay hands the topology for each row."""
    return frame_table(_readable(value))


def decode_frames(values: list[bytes]) -> list[tuple[pa.Table, np.ndarray | None] | str]:
    """decode_frame_with_reference of each frame, or the reason it is rejected. Frames
    already in FRAME_SCHEMA (a concentrator's) are validated together: one by one, the
    full validation and the frame checks cost more than reading the frame. Any failure
    among them sends them one by one, so a frame's fate never depends on its fetch."""
    out: list = []
    plain: list[int] = []
    for value in values:
        try:
            table = read_ipc(value)
        except _UNREADABLE as exc:
            out.append(_unreadable(exc))
            continue
        if table.num_rows and table.schema.equals(FRAME_SCHEMA):
            plain.append(len(out))
        out.append(table)
    try:
        whole = pa.concat_tables([out[i] for i in plain]) if plain else None
        if whole is not None:
            whole.validate(full=True)
            if not whole.column("end_ts").null_count + whole.column("start_ts").null_count:
                for i in plain:
                    out[i] = (out[i], None)
    except _UNREADABLE:
        pass     # one by one below: each bad one gets its own reason
    for i, got in enumerate(out):
        if isinstance(got, pa.Table):
            try:
                out[i] = frame_table(_readable(got))
            except ValueError as exc:
                out[i] = str(exc)
    return out


_UNREADABLE = (pa.ArrowException, OSError, ValueError)   # ValueError: UnicodeDecodeError too


def _unreadable(exc: BaseException) -> str:
    return f"frame is not a readable Arrow IPC stream: {str(exc)[:80]}"


def _readable(value: bytes | pa.Table) -> pa.Table:
    """Read, and every offset, length and UTF-8 string checked before anything reads the
    buffers: a corrupt offset would otherwise be dereferenced later (wrong data, or
    SIGSEGV). Raises ValueError with the reason."""
    try:
        table = value if isinstance(value, pa.Table) else read_ipc(value)
        table.validate(full=True)
    except _UNREADABLE as exc:
        raise ValueError(_unreadable(exc)) from None
    return table


def frame_table(table: pa.Table) -> tuple[pa.Table, np.ndarray | None]:
    """A frame's checks on a table already in memory (typed readings need no IPC round
    trip): the seven columns as FRAME_SCHEMA, and the ingest_time reference (or None);
    raises ValueError with the reason a frame would be rejected for."""
    names = table.column_names
    if not table.num_rows:
        raise ValueError("frame has no readings")
    twice = sorted({c for c in names if names.count(c) > 1})
    if twice:
        raise ValueError(f"frame has duplicate columns {','.join(twice)[:80]}")
    missing = [c for c in CSV_FIELDS if c not in names]
    if missing:
        raise ValueError(f"frame lacks columns {','.join(missing)}")
    ref = None
    try:
        if REFERENCE in names:
            ms = table.column(REFERENCE).cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64())
            ref = pc.fill_null(ms.cast(pa.float64()), np.nan).to_numpy() / 1000
        table = table.select(list(CSV_FIELDS))
        if table.schema != FRAME_SCHEMA:
            table = _numbers_from_text(table).cast(FRAME_SCHEMA)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise ValueError(f"frame has wrong column types: {str(exc)[:80]}") from None
    if table.column("end_ts").null_count or table.column("start_ts").null_count:
        raise ValueError("frame has null timestamps")
    return table, ref


# A number in text is plain decimal (or nan/inf), whatever the encoding: CSV, a JSON
# string, or a frame's text column. Python's float() also takes 1_000, surrounding
# spaces and non-ASCII digits (\u0663); Arrow's int cast takes 0x10. Neither rule is ours.
DECIMAL = (r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
           r"|[+-]?(?:[nN][aA][nN]|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)")


def _numbers_from_text(table: pa.Table) -> pa.Table:
    """A frame's numeric columns sent as text: parsed by the one decimal rule (a value
    outside it makes the column uncastable), timestamps then whole numbers under 2**53."""
    for i, name in enumerate(table.column_names):
        col, want = table.column(i), FRAME_SCHEMA.field(name).type
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)) or \
                pa.types.is_string(want):
            continue
        ok = pc.match_substring_regex(col, f"^(?:{DECIMAL})$")
        if pc.any(pc.invert(pc.fill_null(ok, True))).as_py():
            raise ValueError(f"{name} is not a decimal number")
        num = col.cast(pa.float64())
        if pa.types.is_integer(want):
            whole = pc.and_(pc.equal(pc.floor(num), num), pc.less(pc.abs(num), 2.0**53))
            if pc.any(pc.invert(pc.fill_null(whole, True))).as_py():
                raise ValueError(f"{name} is not an integer")
        table = table.set_column(i, name, num)
    return table
