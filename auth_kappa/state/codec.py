"""Window values as bytes: 32 bytes (sum f64, count i64, min f64, max f64) + dedup bits.

Open finest meter windows also keep the first value of each seen second (8 bytes each,
in second order) in a hash of their own, so a conflicting resend is told from an exact one
after a restart too; apart, because values over 64 bytes would turn every meter's window
hash from a compact listpack into a hashtable (measured: 6.3 KB -> 26 KB per 1m key).

Fixed-width little-endian records built with numpy, so a checkpoint of 100k windows
is a few array copies in Python and one loop in a Redis script.
"""

from __future__ import annotations

import numpy as np

from auth_kappa.topology.readings import SID_WIDTH
from auth_kappa.topology.window_table import UNKNOWN, Rows

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


def seen_mask(seen: np.ndarray) -> np.ndarray:
    """[n, words] seen bits ► [n, 64 * words] bool, one column per second of the window."""
    raw = np.ascontiguousarray(seen, "<u8").view(np.uint8)
    return np.unpackbits(raw, axis=1, bitorder="little").astype(bool)


def firsts(rows: Rows, words: int) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """Open finest meter windows' first values, for the `f:` hash: (row index, fixed-width
    records of 8 B per seen second, in second order) per count of seen seconds; and the
    rows that keep none (final windows: their readings are late from now on) to delete."""
    if not words or rows.first is None or not len(rows):
        return [], np.zeros(0, np.int64)
    mask = seen_mask(rows.seen)
    count = mask.sum(axis=1)
    known = (rows.first != UNKNOWN).any(axis=1) & (count > 0)
    out = []
    for k in np.unique(count[known]):
        idx = np.flatnonzero(known & (count == k))
        rec = rows.first[idx][mask[idx]].astype("<u8").reshape(len(idx), int(k))
        out.append((idx, rec.view(f"V{8 * int(k)}").ravel()))
    return out, np.flatnonzero(~known)


def decode_firsts(seen: np.ndarray, raw: list[bytes | None]) -> np.ndarray:
    """[n, 64 * words] first-value bits per second from the `f:` values; UNKNOWN where none
    is stored (a final window, or one written before first values were kept)."""
    words = seen.shape[1] if seen.ndim == 2 else 0
    out = np.full((len(raw), 64 * words), UNKNOWN, np.uint64)
    if not words or not len(raw):
        return out
    mask = seen_mask(seen)
    lengths = np.fromiter((len(v) if v else 0 for v in raw), np.int64, len(raw))
    whole = (lengths == 8 * mask.sum(axis=1)) & (lengths > 0)
    if whole.any():
        block = out[whole]
        block[mask[whole]] = np.frombuffer(
            b"".join(v for v, ok in zip(raw, whole, strict=True) if ok), "<u8")
        out[whole] = block
    return out


def meter_starts_blob(sid: np.ndarray, window_start: np.ndarray) -> bytes:
    """[sid 36][window_start i64]*: the new windows whose keys the trim script visits."""
    rec = np.zeros(len(sid), np.dtype([("sid", f"S{SID_WIDTH}"), ("ws", "<i8")]))
    rec["sid"], rec["ws"] = sid, window_start
    return rec.tobytes()


STATE_DELTA = np.dtype([("state", "S2"), ("ws", "<i8"), ("val", VALUE)])


def state_blob(states: np.ndarray, rows: Rows) -> tuple[bytes, int]:
    """[state 2][window_start i64][value]*: deltas merged into the totals by the script
    (and by the dashboard's memory, from the change notice: dashboards/fleet_view.py)."""
    rec = np.zeros(len(rows), STATE_DELTA)
    rec["state"], rec["ws"], rec["val"] = states, rows.window_start, values(rows, 0)
    return rec.tobytes(), rec.dtype.itemsize


CHANGE = np.dtype([("k0", "<u8"), ("k1", "<u8"), ("ws", "<i8"), ("val", VALUE)])


def change_blob(rows: Rows, pick: np.ndarray | None = None) -> bytes:
    """[k0 u64][k1 u64][window_start i64][value]*: a checkpoint's meter windows (those
    `pick` selects) as its change notice carries them (absolute values, like the HSETs;
    no dedup bits)."""
    def col(a: np.ndarray) -> np.ndarray:
        return a if pick is None else a[pick]

    rec = np.empty(len(rows) if pick is None else int(pick.sum()), CHANGE)
    rec["k0"], rec["k1"], rec["ws"] = col(rows.k0), col(rows.k1), col(rows.window_start)
    val = rec["val"]   # field by field: a structured copy is ~10x slower
    val["sum"], val["count"] = col(rows.sum), col(rows.count)
    val["min"], val["max"] = col(rows.min), col(rows.max)
    return rec.tobytes()


def decode_values(raw: list[bytes], words: int) -> np.ndarray:
    """Stored values ► structured array; a missing one (None) decodes as an empty window."""
    dt = value_dtype(words)
    empty = np.zeros(1, dt)
    empty["min"], empty["max"] = np.inf, -np.inf
    blank = empty.tobytes()
    return np.frombuffer(b"".join(v[: dt.itemsize] if v else blank for v in raw), dt)


def add_shares(hashes: list[dict[bytes, bytes]]) -> dict[bytes, bytes]:
    """State windows held as shares (a cluster's, one hash per source partition), field
    -> value, as one: sums and counts add up, min and max combine."""
    if len(hashes) == 1:
        return hashes[0]
    fields = [f for h in hashes for f in h]
    if not fields:
        return {}
    vals = decode_values([v for h in hashes for v in h.values()], 0)
    names, inverse = np.unique(np.array(fields, dtype=object), return_inverse=True)
    out = np.zeros(len(names), VALUE)
    out["min"], out["max"] = np.inf, -np.inf
    np.add.at(out["sum"], inverse, vals["sum"])
    np.add.at(out["count"], inverse, vals["count"])
    np.minimum.at(out["min"], inverse, vals["min"])
    np.maximum.at(out["max"], inverse, vals["max"])
    raw, w = out.tobytes(), VALUE.itemsize
    return {f: raw[i * w:(i + 1) * w] for i, f in enumerate(names.tolist())}
