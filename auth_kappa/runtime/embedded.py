"""The topology in-process: no Kafka, Redis or S3. State in memory, output to a local folder."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from auth_kappa.state.memory import MemoryWindowStore
from auth_kappa.topology.decode import Message
from auth_kappa.topology.processor import StepResult, Topology
from auth_kappa.topology.quarantine import Rejected


@dataclass
class Counters:
    accepted: int = 0
    duplicates: int = 0
    late: int = 0
    quarantined: int = 0

    def add(self, r: StepResult) -> None:
        self.accepted += r.accepted
        self.duplicates += r.duplicates
        self.late += len(r.late)
        self.quarantined += len(r.rejects)


@dataclass
class EmbeddedRuntime:
    topology: Topology
    out_dir: Path | None = None
    store: MemoryWindowStore = field(default_factory=MemoryWindowStore)
    counters: Counters = field(default_factory=Counters)
    late: list[pd.DataFrame] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)

    def process(self, batches: Iterable[tuple[str, list[Message]]]) -> None:
        for utility, messages in batches:
            result = self.topology.process(utility, messages, partition=0)
            self.store.apply(result)
            self.counters.add(result)
            if len(result.late):
                self.late.append(result.late)
            self.rejected.extend(result.rejects)
            self._expire(result.watermark)

    def _expire(self, watermark: float) -> None:
        if not math.isfinite(watermark):
            return
        for spec in self.topology.windows:
            self.store.expire_before(spec.size, watermark - spec.retention)

    def final_before(self, utility: str) -> float:
        return self.topology.final_before(self.topology.watermark(utility).current())

    def write_outputs(self) -> None:
        """Late readings and quarantine land in the out folder, as the live path's topics do."""
        if self.out_dir is None:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        late = pd.concat(self.late, ignore_index=True) if self.late else None
        if late is not None:
            late.drop(columns=["raw"]).to_parquet(self.out_dir / "late.parquet", index=False)
        with open(self.out_dir / "quarantine.jsonl", "w") as fh:
            for r in self.rejected:
                fh.write(json.dumps({**r.as_dict(), "raw": r.raw.decode("utf-8", "replace")}) + "\n")
