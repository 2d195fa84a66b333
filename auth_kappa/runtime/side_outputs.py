"""Side outputs of the live runtime: late readings, quarantine and final windows, as the
records a Kafka producer sends. At least once: each carries its source (or its window),
so a consumer can de-duplicate after a replayed checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

from auth_kappa.topology.frames import write_ipc
from auth_kappa.topology.keys import uuid_arrow
from auth_kappa.topology.processor import Slot, StepResult
from auth_kappa.topology.window_table import Rows

MAX_QUARANTINE_BYTES = 64 * 1024  # below any broker's message limit
WINDOWS_PER_MESSAGE = 4096         # ~200 KB per final-windows message
# emit(topic, key, value, headers): the runtime's only way out besides Redis
Emit = Callable[[str, bytes | None, bytes, list[tuple[str, bytes]]], None]


@dataclass
class Outputs:
    late: str = "late"
    quarantine: str = "quarantine"
    windows: str = "windows"
    alerts: str = "alerts"


def emit_rejected(emit: Emit, outputs: Outputs, result: StepResult) -> None:
    """Late readings (original bytes) and quarantined messages (with their reason)."""
    late = result.late
    for i, raw in enumerate(late.raw_or_json() if len(late) else ()):
        emit(outputs.late, bytes(late.service_id[i]), raw,
             [("source", f"{result.utility}:{late.partition[i]}:{late.offset[i]}".encode())])
    for r in result.rejects:
        headers = [("reason", r.reason.encode()),
                   ("source", f"{r.utility}:{r.partition}:{r.offset}".encode())]
        raw = r.raw
        if len(raw) > MAX_QUARANTINE_BYTES:  # the source topic and archive keep it whole
            headers.append(("truncated_from", str(len(raw)).encode()))
            raw = raw[:MAX_QUARANTINE_BYTES]
        emit(outputs.quarantine, None, raw, headers)


def emit_final(emit: Emit, outputs: Outputs, final: dict[Slot, Rows]) -> None:
    """Final per-meter windows, many small messages, each well under a broker's 1 MB."""
    for (utility, level, size), rows in final.items():
        if level != "meter" or not len(rows):
            continue
        table = meter_windows_table(utility, size, rows)
        for lo in range(0, len(table), WINDOWS_PER_MESSAGE):
            emit(outputs.windows, utility.encode(),
                 write_ipc(table.slice(lo, WINDOWS_PER_MESSAGE)), [("size", str(size).encode())])


def meter_windows_table(utility: str, size: int, rows: Rows) -> pa.Table:
    """Final meter windows for the `windows` topic (read back with frames.read_ipc): the
    columns of rows_frame, built straight from the arrays (a minute's finalization emits
    a window per meter)."""
    return pa.table({
        "utility": pa.repeat(utility, len(rows)), "key": uuid_arrow(rows.k0, rows.k1),
        "window_start": rows.window_start, "window_end": rows.window_start + size,
        "sum": rows.sum, "count": rows.count, "min": rows.min, "max": rows.max})
