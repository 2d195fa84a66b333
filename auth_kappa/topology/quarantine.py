"""Rejected input: the raw bytes, where they came from, and why. Nothing bad is dropped silently."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from auth_kappa.topology.readings import Readings


@dataclass(frozen=True)
class Rejected:
    utility: str
    partition: int
    offset: int
    raw: bytes
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {"utility": self.utility, "partition": self.partition, "offset": self.offset,
                "raw": self.raw, "reason": self.reason}


FIELDS = ("service_id", "user_name", "type", "start_ts", "state", "consumption", "end_ts")


def reject_rows(rows: Readings, reasons: Sequence[str]) -> list[Rejected]:
    """Rejected records for decoded rows; a frame's row has no raw bytes, so it is re-encoded
    as JSON: all such rows at once (a resent frame can reject thousands of rows)."""
    raws = list(rows.raw)
    missing = [i for i, r in enumerate(raws) if r is None]
    if missing:
        table = rows.take(np.array(missing, np.int64)).to_pandas()[list(FIELDS)]
        for i, rec in zip(missing, table.to_dict("records"), strict=True):
            raws[i] = json.dumps({k: _plain(v) for k, v in rec.items()}).encode()
    parts, offsets = rows.partition.tolist(), rows.offset.tolist()
    return [Rejected(rows.utility, p, o, raw, why)
            for p, o, raw, why in zip(parts, offsets, raws, reasons, strict=True)]


def _plain(v: object) -> object:
    return v.item() if hasattr(v, "item") else v
