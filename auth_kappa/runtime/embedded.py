"""The topology in-process: no Kafka, Redis or S3. State in memory, output to a local folder."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from auth_kappa.archive.embedded import EmbeddedArchive
from auth_kappa.insights.stage import Insights
from auth_kappa.runtime.counters import Counters
from auth_kappa.state.memory import MemoryWindowStore
from auth_kappa.topology.decode import Message
from auth_kappa.topology.processor import Topology
from auth_kappa.topology.quarantine import Rejected


@dataclass
class EmbeddedRuntime:
    topology: Topology
    out_dir: Path | None = None
    store: MemoryWindowStore = field(default_factory=MemoryWindowStore)
    counters: Counters = field(default_factory=Counters)
    late: list[pd.DataFrame] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    archive: EmbeddedArchive | None = None   # raw messages to a local folder, archive layout
    insights: Insights = field(default_factory=Insights)

    def process(self, batches: Iterable[tuple[str, list[Message]]]) -> None:
        for utility, messages in batches:
            if self.archive is not None:
                self.archive.add(utility, messages)
            result = self.topology.process(utility, messages)
            self.store.put_final(result.final)
            self.insights.observe(self.topology, utility, result.final)
            self.counters.add(result)
            if len(result.late):
                self.late.append(result.late.to_pandas())
            self.rejected.extend(result.rejects)
            self._retain(utility)

    def end_of_input(self) -> None:
        final = self.topology.end_of_input()
        self.store.put_final(final)
        for utility in self.topology.watermarks:
            mine = {slot: rows for slot, rows in final.items() if slot[0] == utility}
            self.insights.observe(self.topology, utility, mine, ended=True)
            self._retain(utility)
        if self.archive is not None:
            self.archive.flush()
        self.write_outputs()

    def _retain(self, utility: str) -> None:
        for spec in self.topology.windows:
            for level in ("meter", "state"):
                self.store.retain((utility, level, spec.size), spec)

    def write_outputs(self) -> None:
        """Late readings and quarantine land in the out folder, as the live path's topics do."""
        if self.out_dir is None:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.late:
            pd.concat(self.late, ignore_index=True).to_parquet(self.out_dir / "late.parquet")
        with open(self.out_dir / "quarantine.jsonl", "w") as fh:
            for r in self.rejected:
                fh.write(json.dumps({**r.as_dict(), "raw": r.raw.decode("utf-8", "replace")})
                         + "\n")
