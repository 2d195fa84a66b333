"""A batch of readings as columns (numpy), the unit every operator works on.

Strings the window math needs are fixed-width bytes or small integer codes, so no
operator touches a Python object per reading.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from auth_kappa.topology.schema import CSV_FIELDS, METER_TYPES, STATES

SID_WIDTH = 36  # canonical uuid text


@dataclass(frozen=True)
class Readings:
    utility: str
    service_id: np.ndarray     # S36
    user_name: np.ndarray | pa.Array  # text; Arrow from frames (no Python str per row)
    type_code: np.ndarray      # int8 index into METER_TYPES, -1 unknown
    start_ts: np.ndarray       # int64
    state_code: np.ndarray     # int8 index into STATES, -1 unknown
    consumption: np.ndarray    # float64
    end_ts: np.ndarray         # int64
    partition: np.ndarray      # int32
    offset: np.ndarray         # int64
    raw: np.ndarray            # object: the message bytes, or None for a frame's row
    ref_ts: np.ndarray         # float64 reference clock for "future" (epoch s; NaN: wall clock)

    def __len__(self) -> int:
        return len(self.end_ts)

    def take(self, index: np.ndarray) -> Readings:
        return replace(self, **{f.name: _take(getattr(self, f.name), index)
                                for f in fields(self) if f.name != "utility"})

    @classmethod
    def empty(cls, utility: str) -> Readings:
        return cls(utility, np.zeros(0, f"S{SID_WIDTH}"), np.zeros(0, object),
                   np.zeros(0, np.int8), np.zeros(0, np.int64), np.zeros(0, np.int8),
                   np.zeros(0, np.float64), np.zeros(0, np.int64), np.zeros(0, np.int32),
                   np.zeros(0, np.int64), np.zeros(0, object), np.zeros(0, np.float64))

    @classmethod
    def concat(cls, utility: str, parts: list[Readings]) -> Readings:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty(utility)
        if len(parts) == 1:
            return parts[0]
        return cls(utility, **{f.name: _concat([getattr(p, f.name) for p in parts])
                               for f in fields(cls) if f.name != "utility"})

    def to_pandas(self) -> pd.DataFrame:
        """Readable columns (for late output, archive, tests): codes back to text."""
        return pd.DataFrame({
            "utility": self.utility,
            "service_id": self.service_id.astype(str),
            "user_name": _numpy(self.user_name),
            "type": decode_codes(self.type_code, METER_TYPES),
            "start_ts": self.start_ts,
            "state": decode_codes(self.state_code, STATES),
            "consumption": self.consumption,
            "end_ts": self.end_ts,
            "partition": self.partition,
            "offset": self.offset,
        })


    def raw_or_json(self) -> list[bytes]:
        """Each row's message bytes; a frame's row has none and is written as JSON (all
        such rows at once: a resent frame can send thousands to the side outputs)."""
        raws = list(self.raw)
        missing = [i for i, r in enumerate(raws) if r is None]
        if missing:
            table = self.take(np.array(missing, np.int64)).to_pandas()[list(CSV_FIELDS)]
            for i, rec in zip(missing, table.to_dict("records"), strict=True):
                raws[i] = reading_json(rec)
        return raws


def reading_json(record: Mapping[str, object]) -> bytes:
    """The one way a reading without its message bytes goes back to JSON (side outputs
    and quarantine): its fields as plain JSON values, in the order given."""
    return json.dumps({k: _plain(v) for k, v in record.items()}).encode()


def _plain(v: object) -> object:
    return v.item() if hasattr(v, "item") else v


_VOCABULARIES: dict[tuple[str, ...], pa.Array] = {}


def encode_codes(values: pa.Array | Sequence[object], vocabulary: tuple[str, ...]
                 ) -> np.ndarray:
    """Text ► index into vocabulary (int8), -1 where unknown or not text (Arrow hash lookup)."""
    if not isinstance(values, (pa.Array, pa.ChunkedArray)):
        try:
            values = pa.array([v if isinstance(v, str) else None for v in values], pa.string())
        except UnicodeEncodeError:   # a lone surrogate (JSON "\ud800") is in no vocabulary
            values = pa.array([v if isinstance(v, str) and _utf8(v) else None for v in values],
                              pa.string())
    vocab = _VOCABULARIES.setdefault(vocabulary, pa.array(vocabulary, pa.string()))
    codes = pc.index_in(values, value_set=vocab)
    return pc.fill_null(codes, -1).to_numpy(zero_copy_only=False).astype(np.int8)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _take(col: np.ndarray | pa.Array, index: np.ndarray) -> np.ndarray | pa.Array:
    if isinstance(col, pa.Array):
        return col.take(pa.array(np.asarray(index, dtype=np.int64)))
    return col[index]


def _concat(cols: list) -> np.ndarray | pa.Array:
    if any(isinstance(c, pa.Array) for c in cols):
        return pa.concat_arrays([c if isinstance(c, pa.Array) else pa.array(c, pa.string())
                                 for c in cols])
    return np.concatenate(cols)


def _numpy(col: np.ndarray | pa.Array) -> np.ndarray:
    return col.to_numpy(zero_copy_only=False) if isinstance(col, pa.Array) else col


def decode_codes(codes: np.ndarray, vocabulary: tuple[str, ...]) -> np.ndarray:
    names = np.array([*vocabulary, "?"], dtype=object)
    return names[np.where(codes < 0, len(vocabulary), codes)]
