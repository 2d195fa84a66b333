"""Rejected input: the raw bytes, where they came from, and why. Nothing bad is dropped silently."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

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


def reject_rows(rows: Readings, reasons: Sequence[str]) -> list[Rejected]:
    """Rejected records for decoded rows; a frame's row has no raw bytes, so it is re-encoded."""
    table = rows.to_pandas()
    out = []
    for i, why in enumerate(reasons):
        raw = rows.raw[i]
        if raw is None:
            rec = table.iloc[i]
            raw = json.dumps({k: _plain(rec[k]) for k in
                              ("service_id", "user_name", "type", "start_ts", "state",
                               "consumption", "end_ts")}).encode()
        out.append(Rejected(rows.utility, int(rows.partition[i]), int(rows.offset[i]), raw, why))
    return out


def _plain(v: object) -> object:
    return v.item() if hasattr(v, "item") else v
