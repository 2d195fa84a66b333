"""Seed CSV readings of a whole fetch parsed at once: Arrow's CSV reader, numpy to screen.

Field by field in Python, decoding was about half of a worker's time on one reading per
message. Here only messages in the plainest form are taken: printable ASCII (no quote
handling, no line breaks), seven fields. Arrow's reader types them (its numbers are
correctly rounded, as float() is); where it takes text the per-message path would not
(a space around a number, an integer in hex: found by trying every printable character)
or a value it types but the per-message path may not (an integer of 2**53 or more, a
number that is not finite), the message is left to the per-message path. A fetch holding
a value Arrow cannot type at all is parsed field by field in numpy instead, where a
timestamp must be at most 15 digits and a consumption at most 15 digits with at most
one point; for those the values are exactly what the per-message path gives: an integer
below 2**53 divided by an exact power of ten is correctly rounded. Every message not
taken is left to the per-message path, which gives each bad one its reason, so a
message's fate never depends on its fetch.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
from numpy.lib.stride_tricks import sliding_window_view

from auth_kappa.topology.readings import SID_WIDTH, encode_codes
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
    count = np.diff(np.searchsorted(commas, ends), prepend=0)   # commas per message
    taken &= count == _FIELDS - 1
    body = arr[len(_PAD):-len(_PAD)]
    odd = np.flatnonzero((body < 0x20) | (body > 0x7E)) + len(_PAD)   # not printable ASCII
    taken[np.searchsorted(ends, odd, side="right")] = False
    taken[taken] &= arr[starts[taken]] != _BRACE          # JSON has its own path
    if not taken.all():
        commas = commas[np.repeat(taken, count)]
    commas = commas.reshape(-1, _FIELDS - 1)
    idx = np.flatnonzero(taken)
    try:
        parsed, good = _by_arrow(values, idx)
        good &= ~_arrow_only(arr, ends[idx], commas)
    except ValueError:   # ArrowInvalid: a value it cannot type; numpy decides per field
        parsed, good = _by_numpy(arr, starts[idx], ends[idx], commas)
    if not good.all():
        taken[idx[~good]] = False
        if not good.any():
            return taken, None
        parsed = Parsed(*(c.filter(pa.array(good)) if isinstance(c, pa.Array) else c[good]
                          for c in parsed))
    return taken, parsed


_NAMES = list(CSV_FIELDS)
_PARSE = pcsv.ParseOptions(quote_char=False, double_quote=False, escape_char=False,
                           newlines_in_values=False, ignore_empty_lines=False)
_TYPES = dict(zip(CSV_FIELDS, (pa.binary(), pa.string(), pa.dictionary(pa.int32(), pa.string()),
                               pa.int64(), pa.dictionary(pa.int32(), pa.string()),
                               pa.float64(), pa.int64()), strict=True))
_CONVERT = pcsv.ConvertOptions(column_types=_TYPES, null_values=[], strings_can_be_null=False,
                               quoted_strings_can_be_null=False)
_EXACT = 2 ** 53     # below it a float64 holds every integer, as the per-message path needs


def _by_arrow(values: list[bytes], idx: np.ndarray) -> tuple[Parsed, np.ndarray]:
    """The taken messages typed by Arrow's CSV reader (one thread: the worker's other
    threads and Kafka share the cores), and which of them it typed as float() would."""
    buf = b"\n".join(values if len(idx) == len(values) else [values[i] for i in idx])
    table = pcsv.read_csv(pa.py_buffer(buf), parse_options=_PARSE, convert_options=_CONVERT,
                          read_options=pcsv.ReadOptions(column_names=_NAMES, use_threads=False,
                                                        block_size=len(buf) + 1))
    if table.num_rows != len(idx) or any(c.num_chunks != 1 for c in table.columns):
        raise ValueError("not one row a message")      # never seen: numpy decides
    sid, name, kind, start, state, cons, end = (c.chunk(0) for c in table.columns)
    start_ts, end_ts = start.to_numpy(), end.to_numpy()
    consumption = cons.to_numpy()
    good = (np.abs(start_ts) < _EXACT) & (np.abs(end_ts) < _EXACT) & np.isfinite(consumption)
    return Parsed(service_id=_binary_sids(sid), user_name=name,
                  type_code=_dictionary_codes(kind, METER_TYPES), start_ts=start_ts,
                  state_code=_dictionary_codes(state, STATES), consumption=consumption,
                  end_ts=end_ts), good


def _arrow_only(arr: np.ndarray, ends: np.ndarray, commas: np.ndarray) -> np.ndarray:
    """Per taken message (`ends`, `commas`: theirs): a number Arrow typed from text the
    per-message path refuses (it trims spaces, and reads 0x1f as an integer)."""
    at = np.flatnonzero((arr == ord(" ")) | ((arr | 0x20) == ord("x")))   # x or X
    before = np.searchsorted(commas.reshape(-1), at)    # taken messages' commas before it
    row, field = np.divmod(before, _FIELDS - 1)
    out = np.zeros(len(ends), bool)
    out[row[(field == 3) | (field == 5)]] = True        # start_ts, consumption
    # after a message's last comma: its end_ts, or a message not taken (or the padding)
    last = row[(field == 0) & (row > 0)] - 1
    out[last[at[(field == 0) & (row > 0)] < ends[last]]] = True
    return out


def _binary_sids(col: pa.Array) -> np.ndarray:
    """S36 where the field has 36 bytes, else b"" (no uuid), as the per-message path."""
    offsets = np.frombuffer(col.buffers()[1], np.int32)[col.offset:col.offset + len(col) + 1]
    out = np.zeros(len(col), f"S{SID_WIDTH}")
    whole = np.flatnonzero(np.diff(offsets) == SID_WIDTH)
    if len(whole):   # else there may be no data buffer at all
        data = np.frombuffer(col.buffers()[2], np.uint8)
        rows = sliding_window_view(data, SID_WIDTH)[offsets[whole]]
        out[whole] = np.ascontiguousarray(rows).view(f"S{SID_WIDTH}").reshape(-1)
    return out


def _dictionary_codes(col: pa.DictionaryArray, vocabulary: tuple[str, ...]) -> np.ndarray:
    """Index into vocabulary (int8), -1 where the text is none of it: each distinct word
    looked up once, as the per-message path looks up every one."""
    return encode_codes(col.dictionary, vocabulary)[col.indices.to_numpy()]


def _by_numpy(arr: np.ndarray, starts: np.ndarray, ends: np.ndarray, commas: np.ndarray
              ) -> tuple[Parsed, np.ndarray]:
    """Each field parsed in numpy, and which messages held only plain numbers."""
    lo = np.empty((len(starts), _FIELDS), np.int64)
    hi = np.empty_like(lo)
    lo[:, 0], lo[:, 1:] = starts, commas + 1
    hi[:, :-1], hi[:, -1] = commas, ends
    start_ts, ok_start = _integers(arr, lo[:, 3], hi[:, 3])
    consumption, ok_cons = _decimals(arr, lo[:, 5], hi[:, 5])
    end_ts, ok_end = _integers(arr, lo[:, 6], hi[:, 6])
    return Parsed(
        service_id=_sids(arr, lo[:, 0], hi[:, 0]),
        user_name=_strings(arr, lo[:, 1], hi[:, 1]),
        type_code=_codes(arr, lo[:, 2], hi[:, 2], METER_TYPES),
        start_ts=start_ts, state_code=_codes(arr, lo[:, 4], hi[:, 4], STATES),
        consumption=consumption, end_ts=end_ts), ok_start & ok_cons & ok_end


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
