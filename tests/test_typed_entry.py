"""The topology's typed way in (decode_table + Topology.process_readings, what replay feeds
archive rows through) decides exactly as the frame path it replaced: the same rows as
Arrow IPC frames, one per partition, through Topology.process. Same windows to the bit,
same counts, same quarantine reasons, with duplicates, conflicting resends, bad rows and
"future" rows mixed in over several partitions."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from auth_kappa.topology.decode import Message, decode_table
from auth_kappa.topology.frames import encode_frame
from auth_kappa.topology.partitioner import partitions_of
from auth_kappa.topology.processor import Topology, rows_frame
from auth_kappa.topology.windows import WindowSpec
from replay.feed import _frame_columns, readings

T0 = 1_772_409_600
PARTITIONS = 4


def _archive_rows(seed: int = 5, meters: int = 60, n: int = 4000) -> pa.Table:
    """Archive-shaped rows (the columns replay reads) in replay's order: by end_ts."""
    rng = np.random.default_rng(seed)
    sids = [str(uuid.UUID(int=int(x), version=4)) for x in rng.integers(0, 2**62, meters)]
    m = rng.integers(0, meters, n)
    end = T0 + 5 * rng.integers(1, 1440, n)
    rows = pd.DataFrame({
        "service_id": np.array(sids, object)[m], "type": "household",
        "start_ts": end - 5, "state": np.array(["CA", "NY", "TX"], object)[m % 3],
        "consumption": rng.triangular(0, 0.1, 0.3, n), "end_ts": end,
        "ingest_time": pd.to_datetime(end + 1, unit="s", utc=True)})   # the record time
    dup = rows.sample(200, random_state=1)                       # exact resends
    conflict = rows.sample(50, random_state=2).assign(consumption=0.25)
    bad = rows.sample(40, random_state=3).reset_index(drop=True)
    bad.loc[:9, "state"] = "ZZ"
    bad.loc[10:19, "type"] = "castle"
    bad.loc[20:29, "consumption"] = -1.0
    bad.loc[30:, "end_ts"] = bad.loc[30:, "end_ts"] + 10 * 3600   # "future" by its record time
    bad.loc[30:, "start_ts"] = bad.loc[30:, "end_ts"] - 5
    rows = pd.concat([rows, dup, conflict, bad], ignore_index=True)
    rows["partition"] = partitions_of([s.encode() for s in rows["service_id"]],
                                      PARTITIONS).astype(np.int32)
    rows["offset"] = np.arange(len(rows), dtype=np.int64)
    rows = rows.sort_values("end_ts", kind="stable").reset_index(drop=True)  # as replay reads
    rows = rows[["service_id", "type", "start_ts", "state", "consumption", "end_ts",
                 "partition", "offset", "ingest_time"]]
    return pa.Table.from_pandas(rows, preserve_index=False).cast(pa.schema([
        ("service_id", pa.string()), ("type", pa.string()), ("start_ts", pa.int64()),
        ("state", pa.string()), ("consumption", pa.float64()), ("end_ts", pa.int64()),
        ("partition", pa.int32()), ("offset", pa.int64()),
        ("ingest_time", pa.timestamp("ms", tz="UTC"))]))


def _topology() -> Topology:
    topo = Topology((WindowSpec(60, 86400), WindowSpec(3600, 86400)), grace=30,
                    idle_timeout=float("inf"))
    topo.assign("gas", range(PARTITIONS))
    return topo


def _windows(topo: Topology, first: dict) -> dict[tuple, pd.DataFrame]:
    final = {**first}
    for slot, rows in topo.end_of_input().items():
        final[slot] = pd.concat([final[slot], rows_frame(*slot, rows)]) if slot in final \
            else rows_frame(*slot, rows)
    return {slot: df.sort_values(["key", "window_start"]).reset_index(drop=True)
            for slot, df in final.items()}


def test_typed_entry_equals_the_frame_path_bit_for_bit():
    table = _archive_rows()
    parts = table["partition"].to_numpy()
    frames = [Message(encode_frame(_frame_columns(table.filter(pa.array(parts == p))),
                                   compression=None), int(p), i)
              for i, p in enumerate(np.unique(parts))]
    by_frames, typed = _topology(), _topology()
    a = by_frames.process("gas", frames)
    b = typed.process_readings("gas", readings("gas", table))
    assert (a.accepted, a.duplicates, a.conflicts) == (b.accepted, b.duplicates, b.conflicts)
    assert a.accepted > 3000 and a.duplicates >= 150 and a.conflicts > 0
    assert sorted((r.reason, r.raw) for r in a.rejects) == \
        sorted((r.reason, r.raw) for r in b.rejects)
    assert {r.reason for r in b.rejects} >= {"future", "unknown state", "unknown meter type",
                                             "consumption is negative",
                                             "conflicting duplicate"}
    # the typed rows keep their Kafka offsets (a frame's rows all had the frame's)
    assert {r.offset for r in b.rejects} <= set(table["offset"].to_pylist())
    first_a = {s: rows_frame(*s, r) for s, r in a.final.items()}
    first_b = {s: rows_frame(*s, r) for s, r in b.final.items()}
    wa, wb = _windows(by_frames, first_a), _windows(typed, first_b)
    assert wa.keys() == wb.keys()
    for slot in wa:
        pd.testing.assert_frame_equal(wa[slot], wb[slot], check_exact=True)
    assert sum(len(df) for df in wb.values()) > 0


def test_typed_rows_are_checked_as_a_frame_is():
    table = _archive_rows().slice(0, 50)
    nulls = table.set_column(table.schema.get_field_index("end_ts"), "end_ts",
                             pa.nulls(table.num_rows, pa.int64()))
    with pytest.raises(ValueError, match="null timestamps"):
        decode_table("gas", _frame_columns(nulls), np.zeros(50, np.int32), np.zeros(50))
    with pytest.raises(ValueError, match="lacks columns"):
        decode_table("gas", table.drop(["state"]), np.zeros(50, np.int32), np.zeros(50))
    with pytest.raises(RuntimeError, match="replay rows rejected"):
        readings("gas", nulls)
