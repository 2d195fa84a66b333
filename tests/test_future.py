"""Clock skew (issue 9, defect 6): a reading far ahead of its record time is quarantined
with reason `future`, decided against the Kafka record timestamp (the archive's
ingest_time) so that the live worker, the archiver and a replay all agree."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from auth_kappa.archive.records import split_messages
from auth_kappa.config import Config
from auth_kappa.topology.decode import Message, decode
from auth_kappa.topology.frames import encode_frame
from auth_kappa.topology.processor import Topology
from auth_kappa.topology.schema import CSV_FIELDS
from auth_kappa.topology.validate import Rules, validate
from auth_kappa.topology.windows import WindowSpec
from replay.feed import _frame_columns, readings

SID = "0b9d3e3c-1f2a-4c1e-9a7b-1234567890ab"
T0 = 1_772_409_600  # 2026-03-02T00:00:00Z: long past on the wall clock


def _csv(end: int) -> bytes:
    return f"{SID},A,household,{end - 5},CA,0.5,{end}".encode()


def _reasons(messages: list[Message]) -> dict[int, str]:
    good, _, bad = validate(decode("gas", messages)[0])
    return {**{int(o): "ok" for o in good.offset}, **{r.offset: r.reason for r in bad}}


def test_max_future_is_configured_like_the_other_durations():
    assert Config.load(env={}).max_future == 900
    assert Config.load(env={"AUTH_MAX_FUTURE": "20m"}).max_future == 1200
    assert Config.load(env={}, max_future="1h").max_future == 3600
    assert Rules.from_config(Config.load(env={"AUTH_MAX_FUTURE": "2m"})).max_future == 120
    assert Rules().max_future == 900


def test_the_record_timestamp_is_the_reference_not_the_wall_clock():
    ts = float(T0)   # the record was written at T0; the wall clock is months later
    msgs = [Message(_csv(T0 + 899), 0, 0, ts), Message(_csv(T0 + 900), 0, 1, ts),
            Message(_csv(T0 + 901), 0, 2, ts), Message(_csv(T0 + 20 * 3600), 0, 3, ts)]
    assert _reasons(msgs) == {0: "ok", 1: "ok", 2: "future", 3: "future"}
    # without a record timestamp the wall clock decides: all of these are in its past
    assert set(_reasons([m._replace(timestamp=None) for m in msgs]).values()) == {"ok"}
    # a meter 20 h ahead of the wall clock is quarantined with no timestamp at all
    import time

    assert _reasons([Message(_csv(int(time.time()) + 20 * 3600), 0, 0)]) == {0: "future"}


def test_frames_use_the_message_timestamp_else_their_ingest_time_column():
    rows = pd.DataFrame([{"service_id": SID, "user_name": "A", "type": "household",
                          "start_ts": e - 5, "state": "CA", "consumption": 0.5, "end_ts": e}
                         for e in (T0 + 5, T0 + 3600)])
    plain = encode_frame(rows, compression=None)
    good, _, bad = validate(decode("gas", [Message(plain, 0, 0, float(T0))])[0])
    assert good.end_ts.tolist() == [T0 + 5] and [r.reason for r in bad] == ["future"]
    table = pa.Table.from_pandas(rows[list(CSV_FIELDS)], preserve_index=False).append_column(
        "ingest_time", pa.array(np.full(2, T0 * 1000), pa.timestamp("ms", tz="UTC")))
    stamped = encode_frame(table, compression=None)
    good, _, bad = validate(decode("gas", [Message(stamped, 0, 0)])[0])
    assert good.end_ts.tolist() == [T0 + 5] and [r.reason for r in bad] == ["future"]


def test_archiver_and_replay_decide_as_the_worker():
    msgs = [Message(_csv(T0 + 5), 3, 10), Message(_csv(T0 + 3600), 3, 11)]
    stamps = np.array([T0 * 1000, T0 * 1000], np.int64)
    archive, quarantine = split_messages("gas", "gas", msgs, stamps)
    assert archive["end_ts"].to_pylist() == [T0 + 5]
    assert quarantine["reason"].to_pylist() == ["future"]
    # the live worker, with the record timestamp the lead's kafka_source passes
    live = Topology((WindowSpec(60, 86400),), grace=30)
    live.assign("gas", [3])
    r = live.process("gas", [m._replace(timestamp=T0) for m in msgs])
    assert r.accepted == 1 and [x.reason for x in r.rejects] == ["future"]
    # a replay of archive rows (accepted or not): the ingest_time column rides in the frame
    ahead = archive.set_column(archive.schema.get_field_index("end_ts"), "end_ts",
                               pa.array([T0 + 3600], pa.int64()))
    both = pa.concat_tables([archive, ahead])
    frame = encode_frame(_frame_columns(both), compression=None)
    topo = Topology((WindowSpec(60, 86400),), grace=30)
    topo.assign("gas", [0])
    r = topo.process("gas", [Message(frame, 0, 0)])
    assert r.accepted == 1 and [x.reason for x in r.rejects] == ["future"]
    # replay's own way in: the same rows typed, no frame bytes (replay/feed.readings)
    typed = Topology((WindowSpec(60, 86400),), grace=30)
    typed.assign("gas", [3])
    r = typed.process_readings("gas", readings("gas", both))
    assert r.accepted == 1 and [x.reason for x in r.rejects] == ["future"]
