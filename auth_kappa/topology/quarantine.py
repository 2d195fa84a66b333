"""Rejected input: the raw bytes, where they came from, and why. Nothing bad is dropped silently."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from auth_kappa.topology.schema import CSV_FIELDS


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


def reject_rows(rows: pd.DataFrame, reasons: pd.Series) -> list[Rejected]:
    """Rejected records for decoded rows; a frame's row has no raw bytes, so it is re-encoded."""
    out = []
    for row, why in zip(rows.itertuples(index=False), reasons, strict=True):
        raw = getattr(row, "raw", None)
        if raw is None:
            raw = json.dumps({f: _plain(getattr(row, f)) for f in CSV_FIELDS}).encode()
        out.append(Rejected(row.utility, int(row.partition), int(row.offset), raw, why))
    return out


def _plain(v: object) -> object:
    return v.item() if isinstance(v, np.generic) else v
