"""The demo's source: an embedded engine's finished run, indexed once for cheap lookups.

`auth-kappa dashboard --embedded DIR` (and `make demo`) run the same topology in-process
over a simulator folder and serve it with no Kafka or Redis. The run is finished before
serving (flush), so the data is a snapshot: the pages work, they just don't move.
"""

from __future__ import annotations

import bisect
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

from auth_kappa.engine import Engine
from auth_kappa.errors import UserError
from auth_kappa.sources.files import utility_files
from auth_kappa.state import codec
from auth_kappa.topology.schema import STATES, UTILITIES
from dashboards import registry
from dashboards.readers import Clock, Stats

Cell = tuple[float, int, float, float]


class EmbeddedReader:
    kind = "embedded"

    def __init__(self, engine: Engine, rows: list[dict[str, str]],
                 duplicates: dict[str, int]) -> None:
        self.sizes = tuple(sorted(s.size for s in engine.specs))
        self.namespace = "embedded"
        self._meters: dict[tuple[str, str, int], dict[int, Cell]] = {}
        self._states: dict[tuple[str, int], dict[tuple[str, int], Cell]] = {}
        newest: dict[str, int] = {}
        for u in UTILITIES:
            for size in self.sizes:
                for level, table in (("meter", self._meters), ("state", self._states)):
                    df = engine.windows(level=level, utility=u, window=size)
                    starts = _epoch(df["window_start"])   # the API's keys are epoch seconds
                    for key, ws, s, c, lo, hi in zip(df["key"], starts, df["sum"],
                                                      df["count"], df["min"], df["max"],
                                                      strict=True):
                        cell = (float(s), int(c), float(lo), float(hi))
                        if level == "meter":
                            table.setdefault((key, u, size), {})[int(ws)] = cell
                        else:
                            table.setdefault((u, size), {})[(key, int(ws))] = cell
                    if level == "state" and size == self.sizes[0] and len(df):
                        newest[u] = max(newest.get(u, 0), int(_epoch(df["window_end"]).max()) - 1)
        late, rejected = engine.late(), engine.quarantine()
        counts = {
            "accepted": {u: sum(c[1] for c in self._states.get((u, self.sizes[0]), {}).values())
                         for u in UTILITIES},
            "duplicates": {u: int(duplicates.get(u, 0)) for u in UTILITIES},
            "late": {u: int((late["utility"] == u).sum()) if len(late) else 0 for u in UTILITIES},
            "quarantined": {u: int((rejected["utility"] == u).sum()) for u in UTILITIES},
        }
        self._stats = Stats(counts)
        # the run is complete: every window is final, so the watermark is the newest reading
        self._clock = Clock(newest, dict(newest), None, self.namespace)
        self._registry = {r["service_id"]: {f: r[f] for f in registry.FIELDS} for r in rows}
        self._alerts = _alert_json(engine.alerts())
        self._ledgers = engine.ledgers
        self._index = sorted(m for r in rows for m in registry.index_members(r))

    @classmethod
    def from_folder(cls, folder: str | Path, windows: tuple[str, ...] = ("1m", "1h"),
                    grace: str = "30s") -> EmbeddedReader:
        """Run the embedded engine over a simulator folder (one utility file at a time, so
        duplicates are counted per utility) and index the result."""
        folder = Path(folder)
        if not folder.is_dir():
            raise UserError(f"{folder} is not a folder; make one with "
                            f"`auth-kappa simulate --out {folder}`")
        files = utility_files(folder)
        engine = Engine.embedded(window=list(windows), grace=grace)
        duplicates: dict[str, int] = {}
        for utility, path in files:
            before = engine.stats.duplicates
            engine.ingest(path, utility=utility)
            duplicates[utility] = duplicates.get(utility, 0) + engine.stats.duplicates - before
        engine.flush()
        reg = folder / "registry.parquet"
        rows = registry.read_registry(reg) if reg.exists() else []
        return cls(engine, rows, duplicates)

    def first_meter(self) -> str | None:
        """A registered meter, for the example link the demo prints."""
        return next(iter(self._registry), None)

    async def refresh(self) -> None:
        return None

    async def clock(self) -> Clock:
        return self._clock

    async def stats(self) -> Stats:
        return self._stats

    async def meter(self, service_id: str, reads: list[tuple[str, int, list[int]]]
                    ) -> tuple[dict[str, str] | None, list[np.ndarray]]:
        out = []
        for utility, size, starts in reads:
            cells = self._meters.get((service_id, utility, size), {})
            out.append(_values([cells.get(w) for w in starts]))
        return self._registry.get(service_id), out

    async def states(self, utility: str, size: int, starts: list[int]) -> np.ndarray:
        cells = self._states.get((utility, size), {})
        return _values([cells.get((s, w)) for s in STATES for w in starts]).reshape(
            len(STATES), len(starts))

    async def search(self, text: str, limit: int) -> list[dict[str, str]]:
        i = bisect.bisect_left(self._index, text)
        sids: list[str] = []
        while i < len(self._index) and self._index[i].startswith(text) and len(sids) < limit:
            sid = self._index[i].split(registry.SEP)[1]
            if sid not in sids:
                sids.append(sid)
            i += 1
        return [{"service_id": s, **self._registry[s]} for s in sids]

    async def registry_size(self) -> int:
        return len(self._registry)

    async def alerts(self) -> list[bytes]:
        return self._alerts

    async def owners(self, sids: list[str]) -> dict[str, dict[str, str] | None]:
        return {s: self._registry.get(s) for s in sids}

    async def days(self, service_id: str) -> dict[str, list[bytes]]:
        return {u: [d.encode() for d in led.days_of(service_id)]
                for u, led in self._ledgers.items()}

    async def sketches(self, utility: str, date: str) -> dict[str, list[bytes]]:
        out: dict[str, list[bytes]] = {}
        for homes in self._ledgers[utility].similar.values():
            for (_, state, kind, day), sketch in homes.sketches.items():
                if day == date:
                    out.setdefault(f"{state}:{kind}", []).append(sketch.serialize())
        return out

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None


def _epoch(times: pd.Series) -> np.ndarray:
    """UTC timestamps (Engine frames) ► integer epoch seconds."""
    return times.to_numpy("datetime64[s]").astype(np.int64)


def _values(cells: list[Cell | None]) -> np.ndarray:
    out = np.zeros(len(cells), codec.VALUE)
    out["min"], out["max"] = np.inf, -np.inf
    for i, cell in enumerate(cells):
        if cell is not None:
            out[i] = cell
    return out


def _alert_json(df: pd.DataFrame) -> list[bytes]:
    """Engine.alerts() as the JSON the live workers keep in Redis (epoch seconds)."""
    out = []
    for r in df.itertuples():
        end = None if pd.isna(r.end) else r.end.timestamp()
        out.append(orjson.dumps({"kind": r.kind, "utility": r.utility,
                                 "service_id": r.service_id, "start": r.start.timestamp(),
                                 "end": end, "value": float(r.value), "detail": r.detail}))
    return out
