"""The benchmark's wire format, for the peers whose users would parse it in Python.

One reading per message: the seed CSV line `service_id,user_name,type,start_ts,state,
consumption,end_ts`. Frames: an Arrow IPC stream (first 4 bytes 0xFFFFFFFF) of many
readings. Both come out as (service_id, consumption, end_ts) tuples, the fields a 1-minute
window per meter needs. Imports only pyarrow, which every peer's venv has.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.ipc as ipc

MAGIC = b"\xff\xff\xff\xff"
Reading = tuple[str, float, int]


def parse_csv(value: bytes) -> Reading | None:
    """None for a line that is not a seed reading (the benchmark's data has none)."""
    try:
        sid, _name, _type, _start, _state, cons, end = value.decode().split(",")
        return sid, float(cons), int(end)
    except ValueError:
        return None


def readings(value: bytes) -> list[Reading]:
    """Every reading of a message, a frame or a single CSV line."""
    if value[:4] != MAGIC:
        one = parse_csv(value)
        return [one] if one else []
    table = ipc.open_stream(pa.py_buffer(value)).read_all()
    return list(zip(table.column("service_id").to_pylist(),
                    table.column("consumption").to_pylist(),
                    table.column("end_ts").to_pylist(), strict=True))
