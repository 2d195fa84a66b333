"""The embedded Python API: the same topology as the workers, driven from a notebook or test."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from auth_kappa.config import parse_duration
from auth_kappa.errors import UserError
from auth_kappa.runtime.embedded import Counters, EmbeddedRuntime
from auth_kappa.sources.files import from_records, read_file, utility_files
from auth_kappa.topology.processor import LEVELS, Topology, rows_frame
from auth_kappa.topology.schema import UTILITIES
from auth_kappa.topology.windows import WindowSpec

WINDOW_COLUMNS = ["utility", "key", "window_start", "window_end", "sum", "count", "min", "max"]


class Engine:
    """Feed readings, then ask for window values. `Engine.embedded()` needs no services."""

    def __init__(self, runtime: EmbeddedRuntime) -> None:
        self._rt = runtime

    @classmethod
    def embedded(cls, window: str | Sequence[str] = "1m", grace: str | float = "30s", *,
                 retention: str | None = None, out_dir: str | Path | None = None) -> Engine:
        sizes = [window] if isinstance(window, (str, int, float)) else list(window)
        specs = [WindowSpec.parse(s, retention) for s in sizes]
        # no idle time-outs in-process: input is finite and ends with flush()
        topo = Topology(specs, grace=parse_duration(grace, name="grace"),
                        idle_timeout=float("inf"))
        for u in UTILITIES:
            topo.assign(u, [0])
        return cls(EmbeddedRuntime(topo, Path(out_dir) if out_dir else None))

    @property
    def stats(self) -> Counters:
        return self._rt.counters

    def ingest(self, records: Iterable[object] | str | Path, utility: str | None = None) -> Counters:
        """Dicts, CSV lines, or a path (a folder of utility files, or one utility file)."""
        if isinstance(records, (str, Path)):
            for u, path in utility_files(Path(records)):
                self._rt.process(read_file(u, path))
        else:
            self._rt.process(from_records(records, utility))
        return self._rt.counters

    def flush(self) -> None:
        """End of input: the watermark goes to +inf and every window becomes final."""
        self._rt.end_of_input()

    def windows(self, level: str = "meter", utility: str = "electricity",
                window: str | int | None = None, key: str | None = None,
                final_only: bool = False) -> pd.DataFrame:
        if level not in LEVELS:
            raise UserError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
        if utility not in UTILITIES:
            raise UserError(f"utility must be one of {', '.join(UTILITIES)}, got {utility!r}")
        slot = (utility, level, self._size(window))
        parts = [self._rt.store.final(slot)]
        if not final_only:
            parts.append(rows_frame(*slot, self._rt.topology.open_windows(*slot)))
        df = pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True)
        if key is not None:
            df = df[df["key"] == key]
        return df[WINDOW_COLUMNS].sort_values(["key", "window_start"]).reset_index(drop=True)

    def late(self) -> pd.DataFrame:
        return pd.concat(self._rt.late, ignore_index=True) if self._rt.late else pd.DataFrame()

    def quarantine(self) -> pd.DataFrame:
        return pd.DataFrame([r.as_dict() for r in self._rt.rejected],
                            columns=["utility", "partition", "offset", "raw", "reason"])

    def _size(self, window: str | int | None) -> int:
        sizes = [s.size for s in self._rt.topology.windows]
        if window is None:
            return sizes[0]
        size = int(parse_duration(window, name="window"))
        if size not in sizes:
            raise UserError(f"window {window} is not computed here; sizes: {sizes}")
        return size
