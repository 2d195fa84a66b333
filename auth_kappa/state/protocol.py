"""The window store contract: what a runtime may ask of its state store, and nothing more.

Two stores keep it: RedisWindowStore (the live path's, durable and shared between
workers) and MemoryWindowStore (in-process). tests/test_store_parity.py runs one suite on
both, so a rule of checkpointing, fencing, reopening or retention is written down once
and checked twice. Partitions are named "<utility>:<partition>" ("gas:3").

Left out on purpose: what only Redis can mean (namespaces, cluster placement of keys,
insight state as RESP commands, dropping a namespace). Over the memory store the
insights' state stays in the runtime's memory (Insights.keep_all: the embedded engine).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from auth_kappa.topology.processor import Slot
from auth_kappa.topology.window_table import Loader, Rows


@runtime_checkable
class WindowStore(Protocol):
    # False for both stores here: a cluster store keys each meter by its partition's slot
    cluster: bool
    # offsets each checkpoint was acknowledged at, so a reload below them shows lost writes
    acknowledged: dict[str, int]

    def claim(self, partitions: list[str]) -> dict[str, int]:
        """Bump each partition's generation: a former owner's checkpoints are refused after."""
        ...

    def checkpoint(self, dirty: Mapping[Slot, Rows], offsets: Mapping[str, int],
                   highs: Mapping[str, float], generations: Mapping[str, int] | None = None,
                   stats: Mapping[str, int] | None = None,
                   expected: Mapping[str, int | None] | None = None,
                   marks: Mapping[str, float] | None = None,
                   extra: Sequence[bytes] = ()) -> int:
        """Windows and the offsets that produced them, all or nothing, so a restart from the
        offsets never counts a reading twice or loses one. Meter rows are absolute values
        (idempotent), state rows deltas; retention (WindowSpec.retention_cut) applies.
        Raises Fenced when a partition in `generations` was claimed since, RolledBack when
        the store lost the claim or does not hold the `expected` offsets. Returns the
        number of windows written."""
        ...

    def offsets(self) -> dict[str, int]:
        """Next offset per partition as of the last checkpoint: where an owner resumes."""
        ...

    def highs(self) -> dict[str, int]:
        """Each partition's clock (highest end_ts checkpointed): restores its watermark."""
        ...

    def marks(self) -> dict[str, int]:
        """Idle partitions' advances past their clock: restores an idle-timed watermark."""
        ...

    def watermarks(self) -> dict[str, float]:
        """Per utility, the lowest partition clock-or-mark: what readers may call final."""
        ...

    def stats(self) -> dict[str, float]:
        """Counters added by checkpoints, so each reading counts once, like its windows."""
        ...

    def loader(self, slot: Slot, newer_than: float) -> Loader | None:
        """Stored values of windows not in memory (a restart reopens them); windows after
        `newer_than` cannot be stored and start empty. None: the slot holds deltas."""
        ...

    def indexed_meters(self, utility: str, partition: int) -> tuple:
        """(k0, k1) of the meters a partition stored windows for: whose open windows to
        reopen after a restart."""
        ...

    def drop_final_firsts(self, utility: str, partition: int, k0: np.ndarray,
                          k1: np.ndarray, cut: float) -> int:
        """Delete the first values of these meters' windows starting before `cut` (final:
        never read again) that a crash or a rebalance left behind; how many went."""
        ...

    def set_partitions(self, counts: Mapping[str, int]) -> None:
        """Each utility's partition count, for readers that look per partition."""
        ...

    def partition_counts(self, refresh: bool = False) -> dict[str, int]:
        """What set_partitions stored (refresh: re-read what another worker stored)."""
        ...

    def read_windows(self, level: str, utility: str, size: int, key: str | None = None
                     ) -> pd.DataFrame:
        """Stored windows in the public frame, for queries and for checking a store."""
        ...
