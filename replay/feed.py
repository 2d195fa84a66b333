"""Archive rows ► the one Topology. The rows are typed already: they go in through the
topology's typed entry (decode_table, then Topology.process_readings), which checks them
as it checks a frame, so replay owns no parsing and no window math, and no row is
encoded to Arrow IPC only to be decoded again.

Input is in event-time order, so nothing is late; the watermark follows the data. Each
row goes in under its source partition (the archive keeps it), as the live path saw it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from auth_kappa.archive.store import ObjectStore
from auth_kappa.runtime.counters import Counters
from auth_kappa.topology.decode import decode_table
from auth_kappa.topology.processor import Slot, Topology
from auth_kappa.topology.readings import Readings
from auth_kappa.topology.schema import CSV_FIELDS
from auth_kappa.topology.watermark import NO_WATERMARK
from auth_kappa.topology.window_table import Rows
from replay.plan import Plan
from replay.progress import ProgressBar
from replay.reader import chunks, iter_hours, partition_highs

CHUNK_ROWS = 100_000   # rows per topology step
OnFinal = Callable[[dict[Slot, Rows]], None]


@dataclass
class FeedStats(Counters):
    """The runtimes' counters, plus rows read and the highest end_ts per partition."""

    rows: int = 0
    highs: dict[str, int] = field(default_factory=dict)   # "<topic>:<partition>" -> end_ts


def feed(store: ObjectStore, plan: Plan, topo: Topology, on_final: OnFinal,
         bar: ProgressBar | None = None, finish: bool = True) -> FeedStats:
    """Every planned row through the topology, hour by hour; final windows to on_final."""
    stats = FeedStats()
    for u in plan.utilities:
        for _, table in iter_hours(store, plan, u):
            for topic_p, high in _highs(table).items():
                stats.highs[topic_p] = max(high, stats.highs.get(topic_p, high))
            for chunk in chunks(table, CHUNK_ROWS):
                batch = readings(u, chunk)
                align_clocks(topo, u, np.unique(batch.partition).tolist())
                result = topo.process_readings(u, batch)
                stats.rows += chunk.num_rows
                stats.add(result)
                on_final(result.final)
                if bar is not None:
                    bar.add(chunk.num_rows)
        align_clocks(topo, u, [])
        on_final(topo.pop_final(u))
    if finish:
        on_final(topo.end_of_input())
    return stats


def readings(utility: str, chunk: pa.Table) -> Readings:
    """Archive rows as the topology's typed batch, each under its source partition and
    Kafka offset (as the live path saw it), so meter windows, meter sets and highs land
    where live puts them. Rows are grouped by partition, in event-time order inside each:
    the order in which the topology adds them (and its float sums) stays the same."""
    parts = chunk["partition"].to_numpy()
    if len(parts) and not (parts == parts[0]).all():
        order = np.argsort(parts, kind="stable")
        chunk, parts = chunk.take(order), parts[order]
    try:
        return decode_table(utility, _frame_columns(chunk), parts,
                            chunk["offset"].to_numpy())
    except ValueError as exc:   # the archive holds only accepted rows: this is corruption
        raise RuntimeError(f"replay rows rejected: {exc}") from None


def align_clocks(topo: Topology, utility: str, partitions: list[int]) -> None:
    """Assign partitions seen for the first time, then set every partition's clock to the
    newest end_ts seen in any. Replay rows come in end_ts order over all partitions of a
    topic, so no partition can still bring an older reading: windows are final (and
    nothing is late) exactly as by the data's own order, whichever partition holds them."""
    wm = topo.watermarks[utility]
    known = set(wm.partitions())
    new = [p for p in dict.fromkeys(partitions) if p not in known]
    if new:
        topo.assign(utility, new)
    top = max((wm.high(p) for p in wm.partitions()), default=NO_WATERMARK)
    if top > NO_WATERMARK:
        for p in wm.partitions():
            if wm.high(p) < top:
                wm.observe(p, top)


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
