"""Files sink: DIR/electricity.csv (or .jsonl, .parquet), one per utility.

CSV and JSON lines are written straight from the Arrow buffer (one write per chunk).
Parquet is written in fixed row groups, so the bytes do not depend on chunk size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from auth_kappa.config import UTILITIES
from simulators.faults import Emission
from simulators.reading_batch import READING_SCHEMA
from simulators.stream import Simulation

ROW_GROUP = 1 << 16


def lines_bytes(payload: pa.BinaryArray) -> memoryview:
    """The messages as newline-terminated lines, without a Python object per message."""
    joined = pc.binary_join_element_wise(payload, b"\n", b"")
    if len(joined) == 0:
        return memoryview(b"")
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32)[joined.offset:]
    return memoryview(joined.buffers()[2])[offsets[0]:offsets[len(joined)]]


class FileSink:
    """Writes each utility's stream to DIR/<utility>.<ext>, overwriting old files."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)
        self._text: dict[str, BinaryIO] = {}
        self._parquet: dict[str, pq.ParquetWriter] = {}
        self._pending: dict[str, list[pa.Table]] = {}
        self._paths: dict[str, Path] = {}

    def open(self, sim: Simulation) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for u in UTILITIES:
            path = self.out_dir / f"{u}.{sim.format.extension}"
            self._paths[u] = path
            if sim.format.name == "parquet":
                self._parquet[u] = pq.ParquetWriter(path, READING_SCHEMA, compression="zstd")
                self._pending[u] = []
            else:
                self._text[u] = open(path, "wb")  # noqa: SIM115 - closed in close()

    def write(self, emission: Emission) -> None:
        u = emission.utility
        if u in self._text:
            self._text[u].write(lines_bytes(emission.payload))
            return
        pending = self._pending[u]
        pending.append(emission.payload)
        if sum(t.num_rows for t in pending) >= ROW_GROUP:
            self._write_groups(u, final=False)

    def _write_groups(self, u: str, final: bool) -> None:
        if not self._pending[u]:
            return
        table = pa.concat_tables(self._pending[u])
        full = table.num_rows if final else table.num_rows // ROW_GROUP * ROW_GROUP
        if full:
            self._parquet[u].write_table(table.slice(0, full), row_group_size=ROW_GROUP)
        self._pending[u] = [table.slice(full)]

    def close(self) -> dict[str, Any]:
        for f in self._text.values():
            f.close()
        for u, writer in self._parquet.items():
            self._write_groups(u, final=True)
            writer.close()
        self._text.clear()
        self._parquet.clear()
        return {"to": "files", "files": {u: p.name for u, p in self._paths.items()}}
