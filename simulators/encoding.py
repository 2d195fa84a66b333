"""Wire encodings of a reading (csv, json, parquet) and the malformed variants of each.

Clean readings are encoded columnar with Arrow string kernels: the per-meter parts of a
line (service_id, user_name, type, state) are pre-joined once, then each chunk only
formats numbers and joins. Payloads are Arrow arrays (csv/json: one binary value per
message, no newline) or Arrow tables (parquet: one row per message), so reordering and
slicing work the same for every format.

Malformed messages are built in Python (they are few) from a clean reading, and every
kind is one a consumer must reject: wrong field count, non-numeric / NaN / negative
consumption, invalid UTF-8, bad timestamp, bad service_id, blank, truncated. There is
no empty message: a file reader cannot tell an empty line from no line, and the stream
must be the same in files and Kafka (blank = one space instead).
"""

from __future__ import annotations

import json
import math
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from simulators.reading_batch import READING_SCHEMA, Readings
from simulators.registry import Registry
from simulators.spec import format_ts

Payload = pa.Array | pa.Table
FORMATS: tuple[str, ...] = ("csv", "json", "parquet")
EXTENSIONS: dict[str, str] = {"csv": "csv", "json": "jsonl", "parquet": "parquet"}


def format_units(units: int, decimals: int) -> str:
    """Fixed-decimal text of a consumption given in 10**-decimals units (sign kept)."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(int(units)), 10 ** decimals)
    return f"{sign}{whole}.{frac:0{decimals}d}"


def _fixed(units: np.ndarray, decimals: int) -> pa.StringArray:
    """Vectorised format_units for non-negative units."""
    whole, frac = np.divmod(units, 10 ** decimals)
    return pc.binary_join_element_wise(
        pc.cast(pa.array(whole), pa.string()),
        pc.utf8_lpad(pc.cast(pa.array(frac), pa.string()), width=decimals, padding="0"), ".")


def _digits(values: np.ndarray) -> pa.StringArray:
    return pc.cast(pa.array(values), pa.string())


class Format(Protocol):
    """Turns readings into payloads, and single readings into malformed payloads."""

    name: str
    extension: str
    kinds: tuple[str, ...]

    def encode(self, readings: Readings) -> Payload: ...

    def corrupt(self, readings: Readings, draws: np.ndarray) -> tuple[Payload, list[str], list[bytes]]:
        """Malformed payloads for each reading, chosen by draws[i] = (kind, detail) in [0,1).

        Returns the payloads, one reason per payload ('kind: detail') and the raw bytes
        recorded in the ground truth.
        """
        ...


def _pick(options: tuple, u: float):
    return options[min(int(u * len(options)), len(options) - 1)]


class CsvFormat:
    """`service_id,user_name,type,start_ts,state,consumption,end_ts`, no header."""

    name = "csv"
    extension = "csv"
    kinds = ("field_count", "non_numeric", "nan", "negative", "invalid_utf8",
             "bad_timestamp", "bad_service_id", "blank", "truncated")

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._head = pc.binary_join_element_wise(  # "service_id,user_name,type,"
            registry.service_id, registry.user_name, registry.type, "", ",")
        self._state = pc.binary_join_element_wise(",", registry.state, ",", "")  # ",CA,"

    def encode(self, readings: Readings) -> pa.BinaryArray:
        m = pa.array(readings.meter)
        line = pc.binary_join_element_wise(
            self._head.take(m), _digits(readings.start_ts), self._state.take(m),
            _fixed(readings.units, readings.decimals), ",", _digits(readings.end_ts), "")
        return line.cast(pa.binary())

    def corrupt(self, readings: Readings, draws: np.ndarray) -> tuple[Payload, list[str], list[bytes]]:
        clean = self.encode(readings).to_pylist()
        out, reasons = [], []
        for i, line in enumerate(clean):
            kind = _pick(self.kinds, draws[i, 0])
            detail_u = draws[i, 1]
            f = line.split(b",")
            d = readings.decimals
            if kind == "field_count":
                if detail_u < 0.5:
                    bad, detail = b",".join(f[:6]), "6 fields (end_ts missing)"
                else:
                    bad, detail = line + b",extra", "8 fields"
            elif kind == "non_numeric":
                text = _pick((b"n/a", b"abc", b"0.1.2", b""), detail_u)
                bad, detail = b",".join(f[:5] + [text] + f[6:]), f"consumption {text!r}"
            elif kind == "nan":
                text = _pick((b"NaN", b"nan", b"inf"), detail_u)
                bad, detail = b",".join(f[:5] + [text] + f[6:]), f"consumption {text!r}"
            elif kind == "negative":
                text = format_units(-max(int(readings.units[i]), 1), d).encode()
                bad, detail = b",".join(f[:5] + [text] + f[6:]), f"consumption {text.decode()}"
            elif kind == "invalid_utf8":
                bad = b",".join([f[0], f[1][:2] + b"\xff\xfe" + f[1][2:]] + f[2:])
                detail = "user_name has bytes 0xff 0xfe"
            elif kind == "bad_timestamp":
                text = _pick((format_ts(int(readings.end_ts[i])).encode(), b"", b"17e8x"), detail_u)
                bad, detail = b",".join(f[:6] + [text]), f"end_ts {text!r}"
            elif kind == "bad_service_id":
                bad, detail = b",".join([f[0][:-6]] + f[1:]), "service_id too short"
            elif kind == "blank":
                bad, detail = b" ", "whitespace only"
            else:  # truncated inside the first five fields: never 7 fields
                cut = 1 + int(detail_u * (len(b",".join(f[:5])) - 1))
                bad, detail = line[:cut], f"truncated to {cut} bytes"
            out.append(bad)
            reasons.append(f"{kind}: {detail}")
        return pa.array(out, pa.binary()), reasons, out


class JsonFormat:
    """One JSON object per message with the seed field names (jsonl in files)."""

    name = "json"
    extension = "jsonl"
    kinds = ("not_json", "missing_field", "non_numeric", "nan", "negative", "invalid_utf8",
             "bad_timestamp", "bad_service_id", "blank")

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        # Names, types and uuids are plain ASCII without quotes or backslashes (names.py),
        # so the JSON text can be joined without escaping.
        self._head = pc.binary_join_element_wise(
            '{"service_id":"', registry.service_id, '","user_name":"', registry.user_name,
            '","type":"', registry.type, '","start_ts":', "")
        self._state = pc.binary_join_element_wise(',"state":"', registry.state,
                                                  '","consumption":', "")

    def encode(self, readings: Readings) -> pa.BinaryArray:
        m = pa.array(readings.meter)
        line = pc.binary_join_element_wise(
            self._head.take(m), _digits(readings.start_ts), self._state.take(m),
            _fixed(readings.units, readings.decimals), ',"end_ts":', _digits(readings.end_ts),
            "}", "")
        return line.cast(pa.binary())

    def corrupt(self, readings: Readings, draws: np.ndarray) -> tuple[Payload, list[str], list[bytes]]:
        clean = self.encode(readings).to_pylist()
        out, reasons = [], []
        for i, line in enumerate(clean):
            kind = _pick(self.kinds, draws[i, 0])
            detail_u = draws[i, 1]
            head, _, rest = line.partition(b'"consumption":')
            value, _, tail = rest.partition(b",")
            if kind == "not_json":
                cut = 1 + int(detail_u * (len(line) - 2))
                bad, detail = line[:cut], f"truncated to {cut} bytes"
            elif kind == "missing_field":
                name = _pick(("consumption", "end_ts", "service_id"), detail_u)
                obj = json.loads(line)
                del obj[name]
                bad = json.dumps(obj, separators=(",", ":")).encode()
                detail = f"no {name}"
            elif kind in ("non_numeric", "nan", "negative"):
                if kind == "non_numeric":
                    # never a numeric string or a bool: lenient decoders coerce those to numbers
                    text = _pick((b'"n/a"', b'"abc"', b"null", b"[]"), detail_u)
                elif kind == "nan":
                    text = _pick((b"NaN", b"Infinity"), detail_u)
                else:
                    text = format_units(-max(int(readings.units[i]), 1), readings.decimals).encode()
                bad = head + b'"consumption":' + text + b"," + tail
                detail = f"consumption {text.decode()}"
            elif kind == "invalid_utf8":
                bad = line.replace(b'"user_name":"', b'"user_name":"\xff\xfe', 1)
                detail = "user_name has bytes 0xff 0xfe"
            elif kind == "bad_timestamp":
                iso = format_ts(int(readings.end_ts[i]))
                bad = line.rsplit(b'"end_ts":', 1)[0] + b'"end_ts":"' + iso.encode() + b'"}'
                detail = f"end_ts {iso!r} is a string"
            elif kind == "bad_service_id":
                bad = line.replace(b'"service_id":"', b'"service_id":"x', 1)
                detail = "service_id is not a uuid"
            else:
                bad, detail = b" ", "whitespace only"
            out.append(bad)
            reasons.append(f"{kind}: {detail}")
        return pa.array(out, pa.binary()), reasons, out


class ParquetFormat:
    """Rows with the seed columns; malformed rows carry values a validator must reject."""

    name = "parquet"
    extension = "parquet"
    kinds = ("nan", "negative", "null_consumption", "bad_service_id", "bad_timestamp",
             "unknown_type", "unknown_state")

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def encode(self, readings: Readings) -> pa.Table:
        return pa.Table.from_batches([readings.to_arrow(self.registry)])

    def corrupt(self, readings: Readings, draws: np.ndarray) -> tuple[Payload, list[str], list[bytes]]:
        rows = self.encode(readings).to_pylist()
        reasons, raw = [], []
        for i, row in enumerate(rows):
            kind = _pick(self.kinds, draws[i, 0])
            if kind == "nan":
                row["consumption"], detail = math.nan, "consumption NaN"
            elif kind == "negative":
                row["consumption"] = -max(int(readings.units[i]), 1) / 10 ** readings.decimals
                detail = f"consumption {row['consumption']}"
            elif kind == "null_consumption":
                row["consumption"], detail = None, "consumption null"
            elif kind == "bad_service_id":
                row["service_id"], detail = row["service_id"][:-6], "service_id too short"
            elif kind == "bad_timestamp":
                row["end_ts"] = row["start_ts"] - 1
                detail = "end_ts before start_ts"
            elif kind == "unknown_type":
                row["type"], detail = "robot", "type 'robot'"
            else:
                row["state"], detail = "ZZ", "state 'ZZ'"
            reasons.append(f"{kind}: {detail}")
            raw.append(json.dumps(row, sort_keys=True).encode())
        return pa.Table.from_pylist(rows, schema=READING_SCHEMA), reasons, raw


def make_format(name: str, registry: Registry) -> Format:
    """The encoder for --format name."""
    return {"csv": CsvFormat, "json": JsonFormat, "parquet": ParquetFormat}[name](registry)
