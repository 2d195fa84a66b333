"""Test your own pipeline logic without Kafka or Redis: the one topology, in-process.

`TopologyTestDriver` runs the live runtime (runtime/live.py) over the memory store
(state/memory.py), which keeps the same store contract as Redis (state/protocol.py), so
what a test sees is what the workers would write: windows, late readings, quarantine.
In the spirit of Kafka Streams' TopologyTestDriver and Bytewax's testing source/sink::

    from auth_kappa.testing import TopologyTestDriver

    drv = TopologyTestDriver(windows=("1m",), grace="30s")
    drv.pipe("water", ["<service_id>,alice,household,1772409600,CA,1.5,1772409605"])
    drv.windows("meter", "water", "1m")   # the Engine's frame
    drv.late(), drv.rejected()
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import pandas as pd

from auth_kappa.config import parse_duration
from auth_kappa.errors import UserError
from auth_kappa.results import late_frame, quarantine_frame, window_frame
from auth_kappa.runtime.live import LiveRuntime
from auth_kappa.sources.files import from_records
from auth_kappa.state.memory import MemoryWindowStore
from auth_kappa.topology.decode import Message
from auth_kappa.topology.processor import LEVELS, Topology
from auth_kappa.topology.schema import UTILITIES
from auth_kappa.topology.windows import WindowSpec


class TopologyTestDriver:
    """Feed records partition by partition; read what the store and side outputs hold.
    Every pipe() ends with a checkpoint, so windows() shows open windows too."""

    def __init__(self, windows: Sequence[str] = ("1m",), grace: str | float = "30s") -> None:
        self.specs = tuple(WindowSpec.parse(w) for w in windows)
        self.store = MemoryWindowStore(tuple(sorted(self.specs)))
        topology = Topology.finite(self.specs, parse_duration(grace, name="grace"))
        self.runtime = LiveRuntime(topology, self.store, emit=None,
                                   commit_interval=math.inf, insights=None)
        self._owned: set[tuple[str, int]] = set()
        self._offsets: dict[tuple[str, int], int] = {}
        self._late: list[pd.DataFrame] = []
        self._rejected: list[dict[str, object]] = []

    def pipe(self, utility: str, records: Iterable[object], partition: int = 0) -> None:
        """CSV lines or dicts, in the order of one source partition; offsets continue
        from the previous pipe() of that partition."""
        for u, batch in from_records(records, utility, partition=partition):
            self._own(u, partition)
            at = self._offsets.get((u, partition), 0)
            msgs = [Message(m.value, partition, at + i) for i, m in enumerate(batch)]
            self._offsets[(u, partition)] = at + len(msgs)
            result = self.runtime.process(u, msgs)
            if len(result.late):
                self._late.append(result.late.to_pandas())
            self._rejected += [r.as_dict() for r in result.rejects]
        self.runtime.checkpoint()

    def _own(self, utility: str, partition: int) -> None:
        """A partition seen for the first time joins the assignment; the runtime then
        resumes the others from the store, as after a rebalance."""
        if (utility, partition) in self._owned:
            return
        self.runtime.checkpoint()
        self._owned.add((utility, partition))
        self.runtime.assign(sorted(self._owned))

    def windows(self, level: str = "meter", utility: str = "electricity",
                window: str | None = None, key: str | None = None) -> pd.DataFrame:
        """The Engine's window frame (open and final windows, as checkpointed)."""
        if level not in LEVELS:
            raise UserError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
        if utility not in UTILITIES:
            raise UserError(f"utility must be one of {', '.join(UTILITIES)}, got {utility!r}")
        size = self.specs[0].size if window is None else \
            int(parse_duration(window, name="window"))
        if size not in {s.size for s in self.specs}:
            raise UserError(f"window {window} is not computed here; sizes: "
                            f"{[s.label for s in self.specs]}")
        return window_frame(self.store.read_windows(level, utility, size, key), utility)

    def late(self) -> pd.DataFrame:
        """Readings routed late, in arrival order (the Engine's late() frame)."""
        return late_frame(self._late)

    def rejected(self) -> pd.DataFrame:
        """Quarantined messages with their reason (the Engine's quarantine() frame)."""
        return quarantine_frame(self._rejected)
