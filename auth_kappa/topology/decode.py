"""Bytes ► Readings. Seed CSV, JSON and Arrow frames, told apart by their first bytes.

Plain seed CSV is parsed per fetch (csv_batch); everything else is split per message (each
bad one needs its own reason) and typed per column.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from auth_kappa.topology import csv_batch
from auth_kappa.topology.frames import DECIMAL, decode_frames, frame_table, is_frame
from auth_kappa.topology.quarantine import Rejected
from auth_kappa.topology.readings import SID_WIDTH, Readings, encode_codes, reading_json
from auth_kappa.topology.schema import CSV_FIELDS, METER_TYPES, STATES, UTILITIES

MAX_READING_BYTES = 4096          # one CSV/JSON reading is ~120 bytes
MAX_FRAME_BYTES = 16 * 1024 * 1024


class Message(NamedTuple):
    value: bytes
    partition: int = 0
    offset: int = -1
    # Kafka record timestamp, epoch seconds: the reference clock for "future" (None: wall
    # clock, or a frame's own ingest_time column), so a replay decides like the live run
    timestamp: float | None = None


@dataclass(frozen=True)
class MessageBatch:
    """A fetch as columns: what a consumer hands over without a Python object per record
    beyond its value (Sequence[Message] is also taken everywhere a batch is)."""
    values: list[bytes]
    partition: np.ndarray      # int32
    offset: np.ndarray         # int64
    timestamp: np.ndarray      # float64 epoch s, NaN: none (see Message.timestamp)

    def __len__(self) -> int:
        return len(self.values)

    def __iter__(self) -> Iterator[Message]:
        return (self.message(i) for i in range(len(self.values)))

    def message(self, i: int) -> Message:
        ts = float(self.timestamp[i])
        return Message(self.values[i], int(self.partition[i]), int(self.offset[i]),
                       None if ts != ts else ts)

    @staticmethod
    def seconds(ms: np.ndarray) -> np.ndarray:
        """Kafka record timestamps (ms) as the timestamp column: <= 0 means none (NaN)."""
        ms = np.asarray(ms, np.float64)
        return np.where(ms > 0, ms / 1000, np.nan)

    def slice(self, lo: int, hi: int) -> MessageBatch:
        return MessageBatch(self.values[lo:hi], self.partition[lo:hi], self.offset[lo:hi],
                            self.timestamp[lo:hi])

    def take(self, index: np.ndarray) -> MessageBatch:
        return MessageBatch([self.values[int(i)] for i in index], self.partition[index],
                            self.offset[index], self.timestamp[index])

    @classmethod
    def concat(cls, batches: Sequence[MessageBatch]) -> MessageBatch:
        if len(batches) == 1:
            return batches[0]
        return cls([v for b in batches for v in b.values],
                   np.concatenate([b.partition for b in batches]),
                   np.concatenate([b.offset for b in batches]),
                   np.concatenate([b.timestamp for b in batches]))

    @classmethod
    def of(cls, messages: Sequence[Message]) -> MessageBatch:
        if isinstance(messages, MessageBatch):
            return messages
        n = len(messages)
        return cls([m.value for m in messages],
                   np.fromiter((m.partition for m in messages), np.int32, n),
                   np.fromiter((m.offset for m in messages), np.int64, n),
                   np.fromiter((np.nan if m.timestamp is None else m.timestamp
                                for m in messages), np.float64, n))


def next_offsets(messages: Sequence[Message] | MessageBatch) -> dict[int, int]:
    """partition -> one past its highest offset in the batch (where the next read starts)."""
    batch = MessageBatch.of(messages)
    if not len(batch):
        return {}
    parts, at = np.unique(batch.partition, return_inverse=True)
    high = np.full(len(parts), -1, np.int64)
    np.maximum.at(high, at, batch.offset)
    return {int(p): int(h) + 1 for p, h in zip(parts, high, strict=True)}


def decode(utility: str, messages: Sequence[Message] | MessageBatch
           ) -> tuple[Readings, list[Rejected]]:
    """Decode one topic's messages; a bad message becomes a Rejected with its reason.
    Plain seed CSV is parsed for the whole batch at once (csv_batch); every other
    message goes through the per-message path, which gives each bad one its reason."""
    batch = MessageBatch.of(messages)
    try:
        taken, parsed = csv_batch.parse(batch.values, MAX_READING_BYTES)
        fast = [] if parsed is None else [_from_parsed(utility, parsed, batch,
                                                       np.flatnonzero(taken))]
    except Exception:   # unforeseen: the per-message path decides every message
        taken, fast = np.zeros(len(batch), bool), []
    rest = [batch.message(int(i)) for i in np.flatnonzero(~taken)]
    parts, rejects = _decode_each(utility, rest)
    return _in_offset_order(Readings.concat(utility, fast + parts)), rejects


def decode_table(utility: str, table: pa.Table, partition: np.ndarray, offset: np.ndarray
                 ) -> Readings:
    """Readings already typed (FRAME_SCHEMA columns, optional ingest_time; partition and
    offset per row): a frame's checks and typing without its Arrow IPC bytes, for input
    that never was a message (replay's archive rows). Rows keep their order. Raises
    ValueError with the reason a frame holding them would be rejected for."""
    table, ref = frame_table(table)
    try:
        return _typed_table(utility, table, np.asarray(partition, np.int32),
                            np.asarray(offset, np.int64),
                            np.full(table.num_rows, np.nan) if ref is None else ref)
    except Exception as exc:   # as the frame path: unforeseen input has a reason too
        raise ValueError(_undecodable(exc)) from exc


def _from_parsed(utility: str, parsed: csv_batch.Parsed, batch: MessageBatch,
                 idx: np.ndarray) -> Readings:
    return Readings(
        utility, service_id=parsed.service_id, user_name=parsed.user_name,
        type_code=parsed.type_code, start_ts=parsed.start_ts, state_code=parsed.state_code,
        consumption=parsed.consumption, end_ts=parsed.end_ts,
        partition=batch.partition[idx], offset=batch.offset[idx],
        raw=np.array(batch.values + [None], dtype=object)[idx],
        ref_ts=batch.timestamp[idx])


def _decode_each(utility: str, messages: Sequence[Message]
                 ) -> tuple[list[Readings], list[Rejected]]:
    """The per-message path: what csv_batch does not take (JSON, frames, anything odd)."""
    rows: list[list] = []
    where: list[Message] = []
    tables: list[pa.Table] = []       # frames, typed once together (per-frame cost is fixed)
    origin: list[tuple[int, int, int]] = []
    refs: list[np.ndarray] = []       # each frame's reference times (epoch s, NaN: unknown)
    framed: list[Message] = []        # frames, read together after the loop
    kept: list[Message] = []          # those read: one per table
    rejects: list[Rejected] = []
    for msg in messages:
        value, reason = msg.value, None
        try:   # no input may escape: what the checks below miss is quarantined alone
            if not value:
                reason = "empty message"
            elif is_frame(value):
                if len(value) > MAX_FRAME_BYTES:
                    reason = f"frame of {len(value)} bytes exceeds {MAX_FRAME_BYTES}"
                else:
                    framed.append(msg)    # read together, below
            elif len(value) > MAX_READING_BYTES:
                reason = f"message of {len(value)} bytes exceeds {MAX_READING_BYTES} (not a reading)"
            else:
                fields, reason = _split(value, utility)
                if fields is not None:
                    rows.append(fields)
                    where.append(msg)
        except Exception as exc:
            reason = _undecodable(exc)
        if reason:
            rejects.append(Rejected(utility, msg.partition, msg.offset, value or b"", reason))
    for msg, got in zip(framed, _frames(framed), strict=True):
        if isinstance(got, str):
            rejects.append(Rejected(utility, msg.partition, msg.offset, msg.value, got))
            continue
        table, ref = got
        tables.append(table)
        refs.append(_reference(msg.timestamp, ref, table.num_rows))
        origin.append((msg.partition, msg.offset, table.num_rows))
        kept.append(msg)
    parts: list[Readings] = []
    if tables:
        try:
            parts.append(_from_table(utility, pa.concat_tables(tables), origin,
                                     np.concatenate(refs)))
        except Exception:   # one frame at a time: only the one that raises is quarantined
            for table, o, ref, msg in zip(tables, origin, refs, kept, strict=True):
                try:
                    parts.append(_from_table(utility, table, [o], ref))
                except Exception as exc:
                    rejects.append(Rejected(utility, msg.partition, msg.offset, msg.value,
                                            _undecodable(exc)))
    if rows:
        try:
            typed, bad = _typed(utility, rows, where)
            parts.append(typed)
            rejects += bad
        except Exception:   # one message at a time: only the one that raises is quarantined
            for fields, msg in zip(rows, where, strict=True):
                try:
                    typed, bad = _typed(utility, [fields], [msg])
                    parts.append(typed)
                    rejects += bad
                except Exception as exc:
                    rejects.append(Rejected(utility, msg.partition, msg.offset, msg.value,
                                            _undecodable(exc)))
    rejects.sort(key=lambda r: (r.partition, r.offset))
    return parts, rejects


def _frames(framed: list[Message]) -> list[tuple[pa.Table, np.ndarray | None] | str]:
    """decode_frames; what it did not foresee is quarantined frame by frame."""
    try:
        return decode_frames([m.value for m in framed])
    except Exception:   # noqa: BLE001 - no input may escape
        out: list = []
        for m in framed:
            try:
                out += decode_frames([m.value])
            except Exception as exc:   # noqa: BLE001
                out.append(_undecodable(exc))
        return out


def _undecodable(exc: BaseException) -> str:
    return f"undecodable: {type(exc).__name__}"


def _in_offset_order(batch: Readings) -> Readings:
    """Rows by (partition, offset, row in frame), stably, whatever the mix of encodings:
    the first of two readings for one second (dedup keeps it) is then the lowest offset,
    as in a replay, however the messages were split into batches."""
    p, o = batch.partition.astype(np.int64), batch.offset
    if len(p) < 2 or ((p[1:] > p[:-1]) | ((p[1:] == p[:-1]) & (o[1:] >= o[:-1]))).all():
        return batch
    return batch.take(np.lexsort((o, p)))


def _reference(timestamp: float | None, column: np.ndarray | None, n: int) -> np.ndarray:
    """A frame's per-row reference times: the message's record timestamp when known (what
    the live worker and the archiver see), else the frame's ingest_time (a replay)."""
    if timestamp is not None:
        return np.full(n, float(timestamp))
    return column if column is not None else np.full(n, np.nan)


def _split(value: bytes, utility: str) -> tuple[list | None, str | None]:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return None, "invalid UTF-8"
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError):   # deep nesting: [[[[...]]]] under 4 KiB
            return None, "invalid JSON"
        if not isinstance(obj, dict):
            return None, "JSON reading is not an object"
        if obj.get("utility", utility) != utility:
            claimed = str(obj["utility"])[:32]
            return None, (f"utility {claimed!r} read from the {utility} stream"
                          if claimed in UTILITIES else f"unknown utility {claimed!r}")
        missing = [f for f in CSV_FIELDS if f not in obj]
        if missing:
            return None, f"JSON reading lacks {','.join(missing)}"
        fields = [obj[f] for f in CSV_FIELDS]
        if not all(isinstance(fields[i], str) for i in (0, 1, 2, 4)):
            return None, "JSON reading has a non-text id, name, type or state"
        return fields, None
    fields = text.rstrip("\r\n").split(",")
    if len(fields) != len(CSV_FIELDS):
        return None, f"CSV has {len(fields)} fields, expected {len(CSV_FIELDS)}"
    return fields, None


def _number(v: object) -> float | None:
    """The one rule for a numeric field: text (CSV, or a JSON string) is plain decimal
    (frames.DECIMAL: not float()'s 1_000, ' 1' or non-ASCII digits), a JSON int/float is
    taken; bool, null, list, dict and overflowing ints are not numbers."""
    if type(v) not in _NUMERIC or (type(v) is str and not _DECIMAL.fullmatch(v)):
        return None
    try:
        return float(v)
    except (ValueError, OverflowError):
        return None


_NUMERIC = (str, int, float)   # exact types: bool is an int subclass, and not a number
_DECIMAL = re.compile(DECIMAL)
# what float() takes beyond DECIMAL in ASCII text: whitespace (it strips) and underscores
_FORGIVEN = (" ", "\t", "\n", "\r", "\x0b", "\x0c", "_")


def _numbers(col: tuple, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """Column of text/numbers ► (values, ok mask), decided per value by `_number`.

    The fast path (all text, or all int/float) casts the column at once, which is the
    same float() per value; anything else, or any failure, takes the per-value path,
    so a value's fate never depends on the other values in its batch."""
    n = len(col)
    kinds = set(map(type, col))
    vals = None
    if kinds <= {str}:   # float() per value is DECIMAL when no value has what it forgives
        text = "\x00".join(col)
        fast = text.isascii() and not any(c in text for c in _FORGIVEN)   # ~1 ms per 100k
    else:
        fast = kinds <= {int, float}
    if fast:
        try:
            vals = np.fromiter(col, dtype=object, count=n).astype(np.float64)
            ok = np.ones(n, bool)
        except (ValueError, TypeError, OverflowError):
            vals = None
    if vals is None:
        got = [_number(v) for v in col]
        ok = np.fromiter((g is not None for g in got), bool, n)
        vals = np.fromiter((0.0 if g is None else g for g in got), np.float64, n)
    if dtype is np.int64:
        with np.errstate(invalid="ignore"):
            ok &= np.isfinite(vals) & (vals == np.floor(vals)) & (np.abs(vals) < 2**53)
        return np.where(ok, vals, 0).astype(np.int64), ok
    return vals, ok


def _typed(utility: str, rows: list[list], where: list[Message]) -> tuple[Readings, list[Rejected]]:
    sid, name, mtype, start, state, cons, end = zip(*rows, strict=True)
    start_ts, ok_start = _numbers(start, np.int64)
    end_ts, ok_end = _numbers(end, np.int64)
    consumption, ok_cons = _numbers(cons, np.float64)
    lengths = np.fromiter(map(len, sid), dtype=np.int64, count=len(sid))
    # S36 holds ASCII; other text (é, a lone surrogate from a JSON escape) is no uuid: ""
    if (lengths == SID_WIDTH).all() and "".join(sid).isascii():
        sids = np.array(sid, dtype=f"S{SID_WIDTH}")
    else:
        sids = np.array([s if len(s) == SID_WIDTH and s.isascii() else "" for s in sid],
                        dtype=f"S{SID_WIDTH}")
    batch = Readings(
        utility,
        service_id=sids,
        user_name=np.array(name, dtype=object),
        type_code=encode_codes(mtype, METER_TYPES),
        start_ts=start_ts,
        state_code=encode_codes(state, STATES),
        consumption=consumption,
        end_ts=end_ts,
        partition=np.fromiter((m.partition for m in where), np.int32, len(where)),
        offset=np.fromiter((m.offset for m in where), np.int64, len(where)),
        raw=np.array([m.value for m in where] + [None], dtype=object)[:-1],
        ref_ts=np.fromiter((np.nan if m.timestamp is None else m.timestamp for m in where),
                           np.float64, len(where)),
    )
    checks = [(~ok_start, "start_ts is not an integer"), (~ok_end, "end_ts is not an integer"),
              (~ok_cons, "consumption is not a number"),
              (_not_unicode(name), "user_name is invalid text (lone surrogate)")]
    return split_bad(batch, checks)


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _not_unicode(texts: tuple[str, ...]) -> np.ndarray:
    """Per value: holds a lone surrogate (JSON's \\ud800 escape), which no UTF-8 encoder,
    Arrow or Parquet takes. UTF-8 bytes never decode to one; ASCII text is checked at once."""
    joined = "\x00".join(texts)
    if joined.isascii() or _SURROGATE.search(joined) is None:
        return np.zeros(len(texts), bool)
    return np.fromiter((_SURROGATE.search(t) is not None for t in texts), bool, len(texts))


def split_bad(batch: Readings, checks: list[tuple[np.ndarray, str]]
              ) -> tuple[Readings, list[Rejected]]:
    """Keep rows that pass every check; the rest leave with the first reason they failed."""
    reason = np.full(len(batch), -1)
    for i, (bad, _) in reversed(list(enumerate(checks))):
        reason[bad] = i
    bad_rows = np.flatnonzero(reason >= 0)
    if len(bad_rows) == 0:
        return batch, []
    from auth_kappa.topology.quarantine import reject_rows

    rejected = reject_rows(batch.take(bad_rows), [checks[i][1] for i in reason[bad_rows]])
    return batch.take(np.flatnonzero(reason < 0)), rejected


def _from_table(utility: str, table: pa.Table, origin: list[tuple[int, int, int]],
                ref_ts: np.ndarray) -> Readings:
    """Frames' rows as Readings; origin = (partition, offset, rows) of each frame, in order."""
    part, off, count = (np.array(x, dtype=np.int64) for x in zip(*origin, strict=True))
    return _typed_table(utility, table, np.repeat(part, count).astype(np.int32),
                        np.repeat(off, count), ref_ts)


def _typed_table(utility: str, table: pa.Table, partition: np.ndarray, offset: np.ndarray,
                 ref_ts: np.ndarray) -> Readings:
    """Typed rows (FRAME_SCHEMA) as Readings, with each row's partition and offset."""
    n = table.num_rows
    sid = table.column("service_id").combine_chunks()
    # bytes, not characters: S36 takes 36 bytes a row, and a uuid is 36 ASCII characters
    lengths = pc.binary_length(sid).to_numpy(zero_copy_only=False)
    sids = None
    if n and (lengths == SID_WIDTH).all() and sid.null_count == 0:
        data = np.frombuffer(sid.buffers()[2], np.uint8)
        # equal lengths: row i's text at its first offset + 36 i (offsets may not start at 0)
        start = int(np.frombuffer(sid.buffers()[1], np.int32, 1, 4 * sid.offset)[0])
        chunk = data[start:start + n * SID_WIDTH]
        if (chunk < 0x80).all():
            sids = chunk.copy().view(f"S{SID_WIDTH}")
    if sids is None:   # other text (é, a null) is no uuid: ""
        sids = np.array([s if s and len(s) == SID_WIDTH and s.isascii() else ""
                         for s in sid.to_pylist()], dtype=f"S{SID_WIDTH}")

    def col(name: str) -> np.ndarray:
        return table.column(name).combine_chunks().to_numpy(zero_copy_only=False)

    type_code = encode_codes(table.column("type").combine_chunks(), METER_TYPES)
    state_code = encode_codes(table.column("state").combine_chunks(), STATES)
    raw = np.full(n, None, dtype=object)
    for i in np.flatnonzero((type_code < 0) | (state_code < 0) | (sids == b"")):
        raw[i] = reading_json(table.slice(int(i), 1).to_pylist()[0])  # keep the text
    return Readings(
        utility, service_id=sids, user_name=table.column("user_name").combine_chunks(),
        type_code=type_code, start_ts=col("start_ts"), state_code=state_code,
        consumption=col("consumption"), end_ts=col("end_ts"),
        partition=partition, offset=offset, raw=raw, ref_ts=ref_ts)
