"""Seed CSV readings of a whole fetch parsed at once: numpy over the joined bytes.

Field by field in Python, decoding was about half of a worker's time on one reading per
message. Here only messages in the plainest form are taken: printable ASCII (no quote
handling, no line breaks), seven fields, timestamps of at most 15 digits, a consumption
of at most 15 digits with at most one point. For those the values are exactly what the
per-message path gives: float() is correctly rounded, and so is an integer below 2**53
divided by an exact power of ten. Every other message is left to the per-message path,
which gives each bad one its reason, so a message's fate never depends on its fetch.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pyarrow as pa
from numpy.lib.stride_tricks import sliding_window_view

from auth_kappa.topology.readings import SID_WIDTH
from auth_kappa.topology.schema import CSV_FIELDS, METER_TYPES, STATES

_FIELDS = len(CSV_FIELDS)
_COMMA, _DOT, _BRACE, _ZERO = ord(","), ord("."), ord("{"), ord("0")
_PAD = bytes(16)
_DIGITS = 15                         # 10**15 < 2**53: exact as a float
_POW10 = 10 ** np.arange(_DIGITS + 1, dtype=np.int64)
_TEN = np.array([float(10 ** k) for k in range(_DIGITS + 1)])   # exact powers of ten


class Parsed(NamedTuple):
    """The taken messages' columns, in message order."""
    service_id: np.ndarray   # S36, b"" where not 36 characters (no uuid)
    user_name: pa.Array
    type_code: np.ndarray
    start_ts: np.ndarray
    state_code: np.ndarray
    consumption: np.ndarray
    end_ts: np.ndarray


def parse(values: list[bytes], max_bytes: int) -> tuple[np.ndarray, Parsed | None]:
    """(taken: one flag per message, the taken messages' columns or None if none)."""
    n = len(values)
    try:
        lens = np.fromiter(map(len, values), np.int64, n)
    except TypeError:    # a tombstone (None): empty, for the per-message path to reject
        values = [v or b"" for v in values]
        lens = np.fromiter(map(len, values), np.int64, n)
    taken = (lens > 0) & (lens <= max_bytes)
    if not taken.any():
        return taken, None
    # padded, so a field's window never leaves the buffer
    arr = np.frombuffer(_PAD + b"".join(values) + _PAD, np.uint8)
    ends = np.cumsum(lens) + len(_PAD)
    starts = ends - lens
    commas = np.flatnonzero(arr == _COMMA)
    owner = np.searchsorted(ends, commas, side="right")   # an empty message owns no byte
    taken &= np.bincount(owner, minlength=n + 1)[:n] == _FIELDS - 1
    odd = np.flatnonzero((arr < 0x20) | (arr > 0x7E))     # not printable ASCII
    odd = odd[(odd >= len(_PAD)) & (odd < len(arr) - len(_PAD))]
    taken[np.searchsorted(ends, odd, side="right")] = False
    taken[taken] &= arr[starts[taken]] != _BRACE          # JSON has its own path
    commas = commas[taken[owner]].reshape(-1, _FIELDS - 1)
    idx = np.flatnonzero(taken)
    lo = np.empty((len(idx), _FIELDS), np.int64)
    hi = np.empty_like(lo)
    lo[:, 0], lo[:, 1:] = starts[idx], commas + 1
    hi[:, :-1], hi[:, -1] = commas, ends[idx]
    start_ts, ok_start = _integers(arr, lo[:, 3], hi[:, 3])
    consumption, ok_cons = _decimals(arr, lo[:, 5], hi[:, 5])
    end_ts, ok_end = _integers(arr, lo[:, 6], hi[:, 6])
    good = ok_start & ok_cons & ok_end          # the rest: the per-message path decides
    if not good.all():
        taken[idx[~good]] = False
        if not good.any():
            return taken, None
        lo, hi = lo[good], hi[good]
        start_ts, consumption, end_ts = start_ts[good], consumption[good], end_ts[good]
    return taken, Parsed(
        service_id=_sids(arr, lo[:, 0], hi[:, 0]),
        user_name=_strings(arr, lo[:, 1], hi[:, 1]),
        type_code=_codes(arr, lo[:, 2], hi[:, 2], METER_TYPES),
        start_ts=start_ts, state_code=_codes(arr, lo[:, 4], hi[:, 4], STATES),
        consumption=consumption, end_ts=end_ts)


def _window(arr: np.ndarray, lo: np.ndarray, hi: np.ndarray, width: int, right: bool = True
            ) -> tuple[np.ndarray, np.ndarray]:
    """Each field's last (right) or first `width` bytes, aligned that way, zero-padded:
    (bytes, in-field mask), one row per position (column-wise loops stay contiguous)."""
    rows = sliding_window_view(arr, width)       # a view: row i is arr[i:i + width]
    col = np.arange(width)[None, :]
    if right:
        raw, inside = rows[hi - width], col >= (width - (hi - lo))[:, None]
    else:
        raw, inside = rows[lo], col < (hi - lo)[:, None]
    raw[~inside] = 0
    return np.ascontiguousarray(raw.T), np.ascontiguousarray(inside.T)


def _integers(arr: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Plain digits (1 to 15 of them) as int64, and which fields were that."""
    length = hi - lo
    raw, inside = _window(arr, lo, hi, _DIGITS)
    ok = (length >= 1) & (length <= _DIGITS)
    value = np.zeros(len(lo), np.int64)
    for row, held in zip(raw, inside, strict=True):
        digit = row - np.uint8(_ZERO)            # wraps below "0": then above 9
        is_digit = digit <= 9
        ok &= is_digit | ~held
        value = value * 10 + np.where(held & is_digit, digit, 0)
    return value, ok


def _decimals(arr: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Digits with at most one point (1 to 15 digits) as float64, and which fields were that."""
    width = _DIGITS + 1
    length = hi - lo
    raw, inside = _window(arr, lo, hi, width)
    ok = (length >= 1) & (length <= width)
    n = len(lo)
    mantissa, digits, fraction, dots = (np.zeros(n, np.int64) for _ in range(4))
    for row, held in zip(raw, inside, strict=True):
        digit = row - np.uint8(_ZERO)
        is_digit = held & (digit <= 9)
        is_dot = held & (row == _DOT)
        ok &= is_digit | is_dot | ~held
        mantissa = np.where(is_digit, mantissa * 10 + digit, mantissa)
        digits += is_digit
        dots += is_dot
        fraction += is_digit & (dots > 0)
    ok &= (dots <= 1) & (digits >= 1) & (digits <= _DIGITS)
    return mantissa.astype(np.float64) / _TEN[np.minimum(fraction, _DIGITS)], ok


def _sids(arr: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """S36 where the field has 36 characters, else b"" (no uuid), as the per-message path."""
    out = sliding_window_view(arr, SID_WIDTH)[lo]
    out[(hi - lo) != SID_WIDTH] = 0
    return out.view(f"S{SID_WIDTH}").reshape(-1)


def _strings(arr: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> pa.Array:
    """The fields as one Arrow string array (no Python str per row)."""
    length = hi - lo
    offsets = np.concatenate(([0], np.cumsum(length))).astype(np.int32)
    at = np.repeat(lo - offsets[:-1], length) + np.arange(int(offsets[-1]))
    data = arr[at].tobytes()
    return pa.Array.from_buffers(pa.string(), len(lo),
                                 [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data)])


_VOCABULARY: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray, int]] = {}


def _codes(arr: np.ndarray, lo: np.ndarray, hi: np.ndarray, vocabulary: tuple[str, ...]
           ) -> np.ndarray:
    """Index into vocabulary (int8), -1 where the text is none of it."""
    if vocabulary not in _VOCABULARY:
        width = max(map(len, vocabulary))
        words = np.array([w.encode() for w in vocabulary], f"S{width}")
        order = np.argsort(words)
        _VOCABULARY[vocabulary] = (words[order], order.astype(np.int8), width)
    words, order, width = _VOCABULARY[vocabulary]
    raw, _ = _window(arr, lo, hi, width, right=False)
    text = np.ascontiguousarray(raw.T).view(f"S{width}").reshape(-1)
    at = np.minimum(np.searchsorted(words, text), len(words) - 1)
    known = (words[at] == text) & ((hi - lo) <= width)
    return np.where(known, order[at], -1).astype(np.int8)
