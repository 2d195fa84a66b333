"""Window values as bytes: 32 bytes (sum f64, count i64, min f64, max f64) + dedup bits.

Fixed-width little-endian records built with numpy, so a checkpoint of 100k windows
is a few array copies in Python and one loop in a Redis script.
"""

from __future__ import annotations

import numpy as np

from auth_kappa.state.window_table import Rows
from auth_kappa.topology.readings import SID_WIDTH

VALUE = np.dtype([("sum", "<f8"), ("count", "<i8"), ("min", "<f8"), ("max", "<f8")])


def value_dtype(words: int) -> np.dtype:
    fields = [("sum", "<f8"), ("count", "<i8"), ("min", "<f8"), ("max", "<f8")]
    return np.dtype(fields + ([("seen", "<u8", (words,))] if words else []))


def values(rows: Rows, words: int) -> np.ndarray:
    out = np.zeros(len(rows), value_dtype(words))
    out["sum"], out["count"], out["min"], out["max"] = rows.sum, rows.count, rows.min, rows.max
    if words:
        out["seen"] = rows.seen
    return out


def meter_starts_blob(sid: np.ndarray, window_start: np.ndarray) -> bytes:
    """[sid 36][window_start i64]*: the new windows whose keys the trim script visits."""
    rec = np.zeros(len(sid), np.dtype([("sid", f"S{SID_WIDTH}"), ("ws", "<i8")]))
    rec["sid"], rec["ws"] = sid, window_start
    return rec.tobytes()


def state_blob(states: np.ndarray, rows: Rows) -> tuple[bytes, int]:
    """[state 2][window_start i64][value]*: deltas merged into the totals by the script."""
    rec = np.zeros(len(rows), np.dtype([("state", "S2"), ("ws", "<i8"), ("val", VALUE)]))
    rec["state"], rec["ws"], rec["val"] = states, rows.window_start, values(rows, 0)
    return rec.tobytes(), rec.dtype.itemsize


def decode_values(raw: list[bytes], words: int) -> np.ndarray:
    """Stored values ► structured array; a missing one (None) decodes as an empty window."""
    dt = value_dtype(words)
    empty = np.zeros(1, dt)
    empty["min"], empty["max"] = np.inf, -np.inf
    blank = empty.tobytes()
    return np.frombuffer(b"".join(v[: dt.itemsize] if v else blank for v in raw), dt)
