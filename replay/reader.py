"""Archive objects ► Arrow tables in event-time order, one hour at a time.

Order is deterministic: hours ascending (the layout puts every row, late ones too, in
the hour of its end_ts), and inside an hour rows sorted by (end_ts, topic, partition,
offset, row). Objects are fetched concurrently and the next hour is read while the
caller processes the current one (a background thread with its own event loop).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from auth_kappa.archive.layout import ObjectRef
from auth_kappa.archive.parquet_io import from_parquet
from auth_kappa.archive.store import ObjectStore
from replay.plan import Plan

SORT_KEYS = [("end_ts", "ascending"), ("topic", "ascending"), ("partition", "ascending"),
             ("offset", "ascending"), ("row", "ascending")]
# user_name is not read: no window uses it (feed.py hands the topology empty names)
COLUMNS = ["service_id", "type", "start_ts", "state", "consumption", "end_ts",
           "topic", "partition", "offset", "row", "ingest_time"]   # ingest_time: "future"


async def read_hour(store: ObjectStore, plan: Plan, refs: list[ObjectRef],
                    concurrency: int = 16) -> pa.Table:
    sem = asyncio.Semaphore(concurrency)

    async def one(ref: ObjectRef) -> pa.Table:
        async with sem:
            data = await store.get(ref.key)
        if data is None:
            raise FileNotFoundError(f"{ref.key} was listed but is gone")
        table = from_parquet(data, columns=COLUMNS)
        lim = plan.limit(ref.topic, ref.partition)
        if lim is not None and ref.last >= lim:
            table = table.filter(pc.less(table["offset"], lim))
        return table

    tables = await asyncio.gather(*(one(r) for r in refs))
    table = pa.concat_tables(tables) if tables else None
    if table is None or not table.num_rows:
        from auth_kappa.archive.records import ARCHIVE_SCHEMA

        return ARCHIVE_SCHEMA.empty_table().select(COLUMNS)
    ts = table["end_ts"]
    mask = pc.greater_equal(ts, plan.start)
    if plan.end is not None:
        mask = pc.and_(mask, pc.less(ts, plan.end))
    table = table.filter(mask)
    keys = SORT_KEYS
    if pc.count_distinct(table["topic"]).as_py() == 1:  # one topic per utility: skip text
        keys = [k for k in SORT_KEYS if k[0] != "topic"]
    return table.take(pc.sort_indices(table, sort_keys=keys))


def iter_hours(store: ObjectStore, plan: Plan, utility: str, prefetch: int = 2
               ) -> Iterator[tuple[int, pa.Table]]:
    """(hour, rows) for one utility, hour after hour; reading runs one step ahead."""
    hours = plan.hours(utility)
    by_hour: dict[int, list[ObjectRef]] = {}
    for ref in plan.objects.get(utility, []):
        by_hour.setdefault(ref.hour_ts, []).append(ref)
    out: queue.Queue = queue.Queue(maxsize=prefetch)
    stop = threading.Event()

    def produce() -> None:
        loop = asyncio.new_event_loop()
        try:
            for h in hours:
                if stop.is_set():
                    break
                out.put((h, loop.run_until_complete(read_hour(store, plan, by_hour[h]))))
            out.put(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread
            out.put(exc)
        finally:
            loop.run_until_complete(store.close())
            loop.close()

    worker = threading.Thread(target=produce, daemon=True, name=f"replay-read-{utility}")
    worker.start()
    try:
        while True:
            item = out.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():
            try:
                out.get(timeout=0.1)
            except queue.Empty:
                pass


def partition_highs(table: pa.Table) -> dict[int, int]:
    """Highest end_ts per partition in a table (rebuild's watermark state per partition)."""
    if not table.num_rows:
        return {}
    g = table.group_by("partition").aggregate([("end_ts", "max")])
    return dict(zip(g["partition"].to_pylist(), g["end_ts_max"].to_pylist(), strict=True))


def chunks(table: pa.Table, rows: int) -> Iterator[pa.Table]:
    for lo in range(0, table.num_rows, rows):
        yield table.slice(lo, rows)


