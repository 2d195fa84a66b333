"""The embedded engine's runtime: the live runtime over the memory store, fed finite input.

No Kafka, Redis or S3, and no window or insight logic of its own: LiveRuntime
(runtime/live.py) processes, checkpoints and retains exactly as a worker does, into a
MemoryWindowStore (state/memory.py) instead of Redis; the insights stay whole in memory
(Insights.keep_all). What is left here is what a finite run needs around it: the late
readings and quarantine kept for queries (and written to a folder, as the live path's
topics carry them), and the raw messages archived to a folder if asked.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from auth_kappa.archive.embedded import EmbeddedArchive
from auth_kappa.insights.stage import Insights
from auth_kappa.runtime.counters import Counters
from auth_kappa.runtime.live import LiveRuntime
from auth_kappa.state.memory import MemoryWindowStore
from auth_kappa.topology.decode import Message
from auth_kappa.topology.processor import Slot, Topology, rows_frame
from auth_kappa.topology.quarantine import Rejected
from auth_kappa.topology.schema import UTILITIES
from auth_kappa.topology.windows import is_final

# final windows wait in memory for the next checkpoint: at one reading per window (a
# 1-minute heartbeat) 50k readings hold ~30 MB of them; fewer, larger checkpoints cost more
CHECKPOINT_READINGS = 50_000


class EmbeddedRuntime:
    def __init__(self, topology: Topology, out_dir: Path | None = None,
                 archive: EmbeddedArchive | None = None,
                 insights: Insights | None = None) -> None:
        self.out_dir, self.archive = out_dir, archive
        self.store = MemoryWindowStore(tuple(topology.windows))
        # a checkpoint every CHECKPOINT_READINGS, never by the clock: a run is repeatable
        self.live = LiveRuntime(topology, self.store, emit=None, commit_interval=math.inf,
                                max_uncommitted=CHECKPOINT_READINGS,
                                insights=insights or Insights(keep_all=True))
        self.live.assign([(u, 0) for u in UTILITIES])   # other partitions join as they come
        self.late: list[pd.DataFrame] = []
        self.rejected: list[Rejected] = []

    @property
    def topology(self) -> Topology:
        return self.live.topology

    @property
    def insights(self) -> Insights:
        assert self.live.insights is not None
        return self.live.insights

    @property
    def counters(self) -> Counters:
        return self.live.counters

    def process(self, batches: Iterable[tuple[str, list[Message]]]) -> None:
        """Batches in order; ends with a checkpoint, so the store holds every window."""
        for utility, messages in batches:
            if self.archive is not None:
                self.archive.add(utility, messages)
            result = self.live.process(utility, messages)
            if len(result.late):
                self.late.append(result.late.to_pandas())
            self.rejected.extend(result.rejects)
        self.live.checkpoint()

    def end_of_input(self) -> None:
        self.live.end_of_input()
        if self.archive is not None:
            self.archive.flush()
        self.write_outputs()

    def windows(self, slot: Slot, final_only: bool = False) -> pd.DataFrame:
        """The store's windows of a slot. final_only: state windows by the utility's
        watermark (their deltas left memory at the checkpoint); meter windows close by
        their partition's clock, so those the topology still holds are the open ones."""
        utility, level, size = slot
        df = self.store.read_windows(level, utility, size)
        if final_only and len(df) and level == "state":
            wm = self.topology.watermarks[utility].current()
            df = df[is_final(df["window_start"], size, self.topology.grace, wm)]
        elif final_only and len(df):
            held = rows_frame(*slot, self.topology.open_windows(*slot))
            if len(held):
                open_ = pd.MultiIndex.from_frame(held[["key", "window_start"]])
                pairs = pd.MultiIndex.from_frame(df[["key", "window_start"]])
                df = df[~pairs.isin(open_)]
        return df.reset_index(drop=True)

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
