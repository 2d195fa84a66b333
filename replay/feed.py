"""Archive rows ► the one Topology. The rows go in as Arrow frames, the format the
stream's decoder already reads, so replay owns no parsing and no window math.

Input is in event-time order, so nothing is late; the watermark follows the data.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa

from auth_kappa.archive.store import ObjectStore
from auth_kappa.runtime.counters import Counters
from auth_kappa.state.window_table import Rows
from auth_kappa.topology.decode import Message
from auth_kappa.topology.frames import encode_frame
from auth_kappa.topology.processor import Slot, Topology
from auth_kappa.topology.schema import CSV_FIELDS
from auth_kappa.topology.windows import WindowSpec
from replay.plan import Plan
from replay.progress import ProgressBar
from replay.reader import chunks, iter_hours, partition_highs

CHUNK_ROWS = 100_000   # ~8 MB frames, under decode's MAX_FRAME_BYTES
OnFinal = Callable[[dict[Slot, Rows]], None]


@dataclass
class FeedStats(Counters):
    """The runtimes' counters, plus rows read and the highest end_ts per partition."""

    rows: int = 0
    highs: dict[str, int] = field(default_factory=dict)   # "<topic>:<partition>" -> end_ts


def replay_topology(specs: tuple[WindowSpec, ...], grace: float) -> Topology:
    topo = Topology(specs, grace=grace, idle_timeout=math.inf)
    for u in topo.watermarks:
        topo.assign(u, [0])
    return topo


def feed(store: ObjectStore, plan: Plan, topo: Topology, on_final: OnFinal,
         bar: ProgressBar | None = None, finish: bool = True) -> FeedStats:
    """Every planned row through the topology, hour by hour; final windows to on_final."""
    stats = FeedStats()
    seq = 0
    for u in plan.utilities:
        for _, table in iter_hours(store, plan, u):
            for topic_p, high in _highs(table).items():
                stats.highs[topic_p] = max(high, stats.highs.get(topic_p, high))
            for chunk in chunks(table, CHUNK_ROWS):
                frame = encode_frame(_frame_columns(chunk), compression=None)
                result = topo.process(u, [Message(frame, 0, seq)])
                if any(r.offset == seq and r.partition == 0 and len(r.raw) == len(frame)
                       for r in result.rejects):
                    raise RuntimeError(f"replay frame rejected: {result.rejects[0].reason}")
                seq += 1
                stats.rows += chunk.num_rows
                stats.add(result)
                on_final(result.final)
                if bar is not None:
                    bar.add(chunk.num_rows)
    if finish:
        on_final(topo.end_of_input())
    return stats


def _frame_columns(chunk: pa.Table) -> pa.Table:
    """The seven reading columns, and ingest_time (the record timestamp: the reference
    clock for "future", as the live worker had it); user_name empty unless kept."""
    if "user_name" not in chunk.column_names:
        chunk = chunk.append_column("user_name", pa.nulls(chunk.num_rows, pa.string()))
    extra = ["ingest_time"] if "ingest_time" in chunk.column_names else []
    return chunk.select([*CSV_FIELDS, *extra])


def _highs(table: pa.Table) -> dict[str, int]:
    if not table.num_rows:
        return {}
    topic = table["topic"][0].as_py()   # one topic per utility
    return {f"{topic}:{p}": h for p, h in partition_highs(table).items()}


def take(rows: Rows, mask) -> Rows:
    """The rows where mask is true (every column, whatever Rows carries)."""
    from dataclasses import fields

    return Rows(**{f.name: None if getattr(rows, f.name) is None else
                   getattr(rows, f.name)[mask] for f in fields(rows)})
