"""Readings from local files and Python objects, as message batches for the topology.

Files are named by utility (electricity.csv, gas.jsonl, water.parquet), as the
simulator writes them. Parquet goes through the frame path, CSV/JSON line by line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow.parquet as pq

from auth_kappa.errors import UserError
from auth_kappa.topology.decode import Message
from auth_kappa.topology.frames import encode_frame
from auth_kappa.topology.schema import UTILITIES

BATCH = 20_000
SUFFIXES = (".csv", ".jsonl", ".json", ".parquet")


def utility_files(path: Path) -> list[tuple[str, Path]]:
    """A directory's utility files, or one file named by its utility."""
    if path.is_dir():
        found = [(u, p) for u in UTILITIES for s in SUFFIXES if (p := path / f"{u}{s}").exists()]
        if not found:
            raise UserError(f"{path} holds no electricity/gas/water .csv, .jsonl or .parquet file")
        return found
    if not path.exists():
        raise UserError(f"{path} does not exist")
    if path.stem not in UTILITIES or path.suffix not in SUFFIXES:
        raise UserError(f"{path.name}: name a file by its utility, e.g. electricity.csv")
    return [(path.stem, path)]


def read_file(utility: str, path: Path, batch: int = BATCH) -> Iterator[tuple[str, list[Message]]]:
    if path.suffix == ".parquet":
        pf = pq.ParquetFile(path)
        offset = 0
        for rb in pf.iter_batches(batch_size=batch):
            yield utility, [Message(encode_frame(rb.to_pandas(), compression=None), 0, offset)]
            offset += 1
        return
    with open(path, "rb") as fh:
        lines = [ln for ln in fh.read().split(b"\n") if ln]
    for i in range(0, len(lines), batch):
        yield utility, [Message(v, 0, i + j) for j, v in enumerate(lines[i:i + batch])]


def from_records(records: Iterable[object], utility: str | None, batch: int = BATCH,
                 partition: int = 0) -> Iterator[tuple[str, list[Message]]]:
    """Dicts (with a 'utility' field or the utility argument), CSV lines (str or bytes),
    in the order of one source partition."""
    pending: dict[str, list[Message]] = {}
    for n, rec in enumerate(records):
        if isinstance(rec, dict):
            u = rec.get("utility", utility)
            if u not in UTILITIES and utility is None:
                u = UTILITIES[0]  # carried to decode, which quarantines it with its reason
            value = json.dumps(rec, default=str).encode()
        elif isinstance(rec, (str, bytes)):
            u = utility
            value = rec.encode() if isinstance(rec, str) else rec
        else:
            raise UserError(f"record {n} is a {type(rec).__name__}; give dicts or CSV lines")
        if u not in UTILITIES:
            raise UserError(f"record {n}: utility {u!r} unknown; pass utility= one of "
                            f"{', '.join(UTILITIES)}")
        msgs = pending.setdefault(u, [])
        msgs.append(Message(value, partition, n))
        if len(msgs) >= batch:
            yield u, msgs
            pending[u] = []
    for u, msgs in pending.items():
        if msgs:
            yield u, msgs
