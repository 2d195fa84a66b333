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
