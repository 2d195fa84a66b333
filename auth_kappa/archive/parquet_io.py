"""Arrow table ◄► Parquet bytes (zstd). Same table, same bytes: retried uploads are identical."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

ROW_GROUP = 1 << 17


def to_parquet(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", row_group_size=ROW_GROUP,
                   use_dictionary=["user_name", "type", "state", "topic", "reason"],
                   write_statistics=["end_ts", "offset"])
    return sink.getvalue().to_pybytes()


def from_parquet(data: bytes, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(pa.BufferReader(data), columns=columns)


def rows_from_footer(tail: bytes) -> int | None:
    """Row count from an object's last bytes (the footer), None if the tail is too short."""
    if len(tail) < 12 or tail[-4:] != b"PAR1":
        return None
    n = int.from_bytes(tail[-8:-4], "little")
    if n + 8 > len(tail):
        return None
    footer = tail[-8 - n:]
    return pq.read_metadata(pa.BufferReader(b"PAR1" + footer)).num_rows
