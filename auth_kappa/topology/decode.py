"""Bytes ► typed columns. Seed CSV, JSON and Arrow frames, told apart by their first bytes.

Parsing is per message (each needs its own error), typing is per column (numpy).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from auth_kappa.topology.frames import decode_frame, is_frame
from auth_kappa.topology.quarantine import Rejected, reject_rows
from auth_kappa.topology.schema import BATCH_COLUMNS, CSV_FIELDS, empty_batch

MAX_READING_BYTES = 4096          # one CSV/JSON reading is ~120 bytes
MAX_FRAME_BYTES = 16 * 1024 * 1024


class Message(NamedTuple):
    value: bytes
    partition: int = 0
    offset: int = -1


def decode(utility: str, messages: Sequence[Message]) -> tuple[pd.DataFrame, list[Rejected]]:
    """Decode one topic's messages; a bad message becomes a Rejected with its reason."""
    rows: list[tuple] = []          # CSV/JSON readings: 7 fields as text/values
    where: list[tuple[int, int, bytes]] = []
    frames: list[pd.DataFrame] = []
    rejects: list[Rejected] = []
    for value, partition, offset in messages:
        reason = None
        if value is None:
            reason = "empty message (null value)"
        elif is_frame(value):
            if len(value) > MAX_FRAME_BYTES:
                reason = f"frame of {len(value)} bytes exceeds {MAX_FRAME_BYTES}"
            else:
                try:
                    f = decode_frame(value)
                    f["partition"], f["offset"], f["raw"] = partition, offset, None
                    frames.append(f)
                except ValueError as exc:
                    reason = str(exc)
        elif len(value) > MAX_READING_BYTES:
            reason = f"message of {len(value)} bytes exceeds {MAX_READING_BYTES} (not a reading)"
        else:
            try:
                text = value.decode("utf-8")
            except UnicodeDecodeError:
                reason = "invalid UTF-8"
            else:
                fields, reason = _parse(text)
                if fields is not None:
                    rows.append(fields)
                    where.append((partition, offset, value))
        if reason:
            rejects.append(Rejected(utility, partition, offset, value or b"", reason))
    parts = [f for f in frames if not f.empty]
    if rows:
        parts.append(_typed(rows, where))
    if not parts:
        return empty_batch().assign(raw=pd.Series([], dtype=object)), rejects
    batch = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    batch["utility"] = utility
    batch, bad = _check_types(batch, utility)
    return batch[[*BATCH_COLUMNS, "raw"]], rejects + bad


def _parse(text: str) -> tuple[tuple | None, str | None]:
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError:
            return None, "invalid JSON"
        if not isinstance(obj, dict):
            return None, "JSON reading is not an object"
        missing = [f for f in CSV_FIELDS if f not in obj]
        if missing:
            return None, f"JSON reading lacks {','.join(missing)}"
        return tuple(obj[f] for f in CSV_FIELDS), None
    fields = text.rstrip("\r\n").split(",")
    if len(fields) != len(CSV_FIELDS):
        return None, f"CSV has {len(fields)} fields, expected {len(CSV_FIELDS)}"
    return tuple(fields), None


def _typed(rows: list[tuple], where: list[tuple[int, int, bytes]]) -> pd.DataFrame:
    cols = list(zip(*rows, strict=True))
    frame = pd.DataFrame({name: pd.Series(col, dtype=object) for name, col in
                          zip(CSV_FIELDS, cols, strict=True)})
    part, off, raw = zip(*where, strict=True)
    frame["partition"] = np.asarray(part, dtype=np.int32)
    frame["offset"] = np.asarray(off, dtype=np.int64)
    frame["raw"] = pd.Series(raw, dtype=object)
    return frame


def _check_types(batch: pd.DataFrame, utility: str) -> tuple[pd.DataFrame, list[Rejected]]:
    """Numbers must be numbers; text fields text. Rows that fail leave with their reason."""
    reason = pd.Series(None, index=batch.index, dtype=object)
    for name in ("start_ts", "end_ts"):
        num = pd.to_numeric(batch[name], errors="coerce")
        bad = num.isna() | (num != np.floor(num.fillna(0))) | (num.abs() > 2**53)
        reason = reason.mask(reason.isna() & bad, f"{name} is not an integer")
        batch[name] = num.where(~bad, 0).astype(np.int64)
    cons = pd.to_numeric(batch["consumption"], errors="coerce")
    reason = reason.mask(reason.isna() & cons.isna() & batch["consumption"].notna()
                         & ~batch["consumption"].astype(str).str.lower().isin(["nan"]),
                         "consumption is not a number")
    batch["consumption"] = cons.astype(np.float64)
    for name in ("service_id", "user_name", "type", "state"):
        notstr = ~batch[name].map(lambda v: isinstance(v, str))
        reason = reason.mask(reason.isna() & notstr, f"{name} is not text")
    bad = reason.notna()
    if not bad.any():
        return batch, []
    return batch[~bad].reset_index(drop=True), reject_rows(batch[bad], reason[bad])
