"""Rejected input: the raw bytes, where they came from, and why. Nothing bad is dropped silently."""

from __future__ import annotations

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
    """Rejected records for decoded rows (a frame's row goes out as JSON)."""
    raws = rows.raw_or_json()
    parts, offsets = rows.partition.tolist(), rows.offset.tolist()
    return [Rejected(rows.utility, p, o, raw, why)
            for p, o, raw, why in zip(parts, offsets, raws, reasons, strict=True)]
