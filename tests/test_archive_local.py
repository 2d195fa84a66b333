"""The archive layout without services: embedded engine archive, simulated history, CLI."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from auth_kappa import Engine
from auth_kappa.archive.local_store import LocalStore
from auth_kappa.cli.main import main
from auth_kappa.config import Config
from auth_kappa.topology.partitioner import partitions_of
from auth_kappa.topology.processor import Topology
from replay.feed import feed
from replay.plan import make_plan
from tests.support.archive import valid_lines

UTILS = ("electricity", "gas", "water")
START = 1772409600


def _rows(folder, prefix: str) -> pd.DataFrame:
    files = sorted((folder / prefix).rglob("*.parquet"))
    return pd.concat([pq.read_table(f).to_pandas().assign(path=str(f)) for f in files],
                     ignore_index=True)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    args = ["simulate", "--meters", "40", "--duration", "70m", "--seed", "71",
            "--late-fraction", "0.02", "--duplicate-fraction", "0.02",
            "--malformed-fraction", "0.01", "--quiet"]
    assert main([*args, "--out", str(out / "files")]) == 0
    assert main([*args, "--out", str(out / "hist"), "--to", "archive", str(out / "arch")]) == 0
    return out


def test_embedded_engine_archives_every_message_and_replay_gives_its_windows(sim, tmp_path):
    eng = Engine.embedded(window=["1m", "1h"], archive_dir=tmp_path / "a")
    eng.ingest(sim / "files")
    eng.flush()
    m = json.loads((sim / "files" / "manifest.json").read_text())
    rows, bad = _rows(tmp_path / "a", "archive"), _rows(tmp_path / "a", "quarantine")
    for u in UTILS:
        assert (rows.topic == u).sum() == m["utilities"][u]["messages"] - \
            m["utilities"][u]["malformed"]
        assert (bad.topic == u).sum() == m["utilities"][u]["malformed"]
        offs = set(rows[rows.topic == u]["offset"]) | set(bad[bad.topic == u]["offset"])
        assert offs == set(range(m["utilities"][u]["messages"]))
    # the folder replays through the same topology to the engine's own windows
    store = LocalStore(tmp_path / "a")
    plan = asyncio.run(make_plan(store, START, START + 2 * 3600, UTILS, {u: u for u in UTILS}))
    topo = Topology.from_config(Config.load(env={}), live=False)
    finals: dict = {}
    feed(store, plan, topo, lambda f: [finals.setdefault(k, []).append(v)
                                       for k, v in f.items() if len(v)])
    for u in UTILS:
        from auth_kappa.topology.processor import rows_frame
        from auth_kappa.topology.window_table import Rows

        got = rows_frame(u, "state", 60, Rows.concat(finals[(u, "state", 60)]))
        want = eng.windows(level="state", utility=u, window="1m")
        # replay puts late readings where they belong: every valid reading exactly once;
        # the engine routed some of them late instead
        assert int(got["count"].sum()) == m["utilities"][u]["valid_readings"]
        assert int(want["count"].sum()) + len(eng.late()[eng.late().utility == u]) == \
            m["utilities"][u]["valid_readings"]


def test_simulated_history_has_kafka_like_partitions_and_offsets(sim):
    m = json.loads((sim / "hist" / "manifest.json").read_text())
    rows, bad = _rows(sim / "arch", "archive"), _rows(sim / "arch", "quarantine")
    assert not (sim / "arch" / "archive" / "_progress").exists(), "no Kafka position here"
    for u in UTILS:
        mine = rows[rows.topic == u]
        assert len(mine) == m["utilities"][u]["messages"] - m["utilities"][u]["malformed"]
        assert (bad.topic == u).sum() == m["utilities"][u]["malformed"]
        sids = mine.service_id.str.encode("ascii").tolist()
        assert (partitions_of(sids, 4) == mine.partition.to_numpy()).all()
        for p in range(4):
            offs = np.sort(np.concatenate([mine[mine.partition == p]["offset"],
                                           bad[(bad.topic == u) & (bad.partition == p)]
                                           ["offset"]]))
            assert (offs == np.arange(len(offs))).all(), (u, p)
        # event-time folders: every row sits in the hour of its end_ts
        hour = mine.path.str.extract(r"date=(\d{4}-\d{2}-\d{2})/hour=(\d{2})")
        ts = pd.to_datetime(hour[0] + " " + hour[1] + ":00", utc=True).dt.as_unit("s") \
            .astype("int64")
        assert ((mine.end_ts // 3600 * 3600).to_numpy() == ts.to_numpy()).all()
    # content equals the simulator's own files (brute-force sums per meter and minute)
    valid, _ = valid_lines(sim / "files", "gas")   # the ground truth's valid messages
    acc: dict = {}
    for line in valid:
        f = line.decode().split(",")
        if (f[0], f[6]) not in acc:
            acc[(f[0], f[6])] = float(f[5])
    ref = pd.DataFrame([(sid, int(end) // 60 * 60, v) for (sid, end), v in acc.items()],
                       columns=["key", "window_start", "value"]).groupby(
        ["key", "window_start"])["value"].agg(["sum", "count"]).reset_index()
    gas = rows[rows.topic == "gas"].drop_duplicates(["service_id", "end_ts"])
    got = gas.assign(window_start=gas.end_ts // 60 * 60).groupby(
        ["service_id", "window_start"])["consumption"].agg(["sum", "count"]).reset_index()
    merged = ref.merge(got, left_on=["key", "window_start"],
                       right_on=["service_id", "window_start"])
    assert len(merged) == len(ref) == len(got)
    assert (merged["count_x"] == merged["count_y"]).all()
    np.testing.assert_allclose(merged["sum_x"], merged["sum_y"], rtol=1e-12)


def test_replay_cli_dry_run_and_one_line_errors(sim, capsys):
    assert main(["replay", "correct", "--from", "2026-03-02T00:00:00Z", "--to",
                 "2026-03-02T02:00:00Z", "--archive", str(sim / "arch"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    events = sum(m["messages"] - m["malformed"] for m in json.loads(
        (sim / "hist" / "manifest.json").read_text())["utilities"].values())
    assert f"{events:,} events" in out and "files" in out and "MB" in out
    assert main(["replay", "correct", "--from", "yesterday", "--to", "x",
                 "--archive", str(sim / "arch")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--from" in err
    assert main(["replay", "correct", "--from", "2026-03-02T00:00:00Z",
                 "--archive", str(sim / "arch")]) == 2
    assert "needs --to" in capsys.readouterr().err
    assert main(["simulate", "--to", "archive", "--quiet"]) == 2
    assert "--to archive DIR" in capsys.readouterr().err


def test_frames_are_archived_row_by_row_and_bad_rows_keep_their_place(sim):
    import pyarrow as pa

    from auth_kappa.archive.rolls import Roll
    from auth_kappa.topology.frames import encode_frame
    from simulators.sinks.frames import parse_lines

    valid, _ = valid_lines(sim / "files", "water")
    table = parse_lines(pa.array(valid[:2500], pa.binary()), "csv")
    cons = table["consumption"].to_numpy().copy()
    cons[1234] = -1.0                                   # one bad row inside frame 1
    table = table.set_column(5, "consumption", pa.array(cons))
    roll = Roll("water", "water", 2)
    for i, lo in enumerate(range(0, table.num_rows, 1000)):
        roll.add(encode_frame(table.slice(lo, 1000)), 40 + i, 1772409600000 + i)
    roll.add(b"\xff\xff\xff\xffnot arrow", 43, 1772409600003)   # an unreadable frame
    sealed = roll.seal()
    assert (sealed.first, sealed.last, sealed.rows, sealed.quarantined) == (40, 43, 2499, 2)
    from auth_kappa.archive.parquet_io import from_parquet

    rows = pd.concat([from_parquet(d).to_pandas() for k, d in sealed.objects
                      if k.startswith("archive/")])
    bad = pd.concat([from_parquet(d).to_pandas() for k, d in sealed.objects
                     if k.startswith("quarantine/")]).sort_values("offset")
    assert not rows.duplicated(["offset", "row"]).any()
    assert sorted(rows.groupby("offset")["row"].max()) == [499, 999, 999]
    assert bad[["offset", "row"]].values.tolist() == [[41, 234], [43, -1]]
    assert "negative" in bad.reason.iloc[0] and bad.raw.iloc[1] == b"\xff\xff\xff\xffnot arrow"
    assert set(rows.partition) == {2} and name_ok(sealed.objects)


def name_ok(objects) -> bool:
    from auth_kappa.archive import layout

    return all(layout.parse_key(k) is not None and k.endswith("water-2-40-43.parquet")
               for k, _ in objects)


def test_progress_bar_shows_rate_and_eta():
    import io

    from replay.progress import ProgressBar

    out = io.StringIO()
    bar = ProgressBar(1000, label="correct", stream=out, every=0.0)
    bar.started -= 2.0                 # as if two seconds had passed
    bar.add(500)
    bar.close()
    line = out.getvalue().strip().splitlines()[-1]
    assert "50.0%" in line and "500/1,000" in line and "/s" in line and "ETA 2s" in line


def test_a_roll_filled_by_fetches_seals_the_same_bytes_as_message_by_message(sim):
    """The archiver hands a roll whole fetches (Roll.extend): the objects must be byte for
    byte those of adding each message, tombstones and records without a timestamp too."""
    from auth_kappa.archive.rolls import Roll
    from auth_kappa.topology.decode import MessageBatch

    valid, _ = valid_lines(sim / "files", "gas")
    values: list[bytes | None] = list(valid[:3000])
    values[17], values[2500] = None, b"not,a,reading"
    offsets = np.arange(100, 100 + len(values))
    stamps = 1772409600000 + np.arange(len(values)) * 7
    stamps[40] = -1              # the record had none: judged by the wall clock, as live
    by_message = Roll("gas", "gas", 1)
    for v, o, t in zip(values, offsets.tolist(), stamps.tolist(), strict=True):
        by_message.add(v, o, t)
    by_fetch = Roll("gas", "gas", 1)
    secs = np.where(stamps > 0, stamps / 1000, np.nan)
    for lo in range(0, len(values), 1100):
        chunk = values[lo:lo + 1100]
        by_fetch.extend(MessageBatch(chunk, np.full(len(chunk), 1, np.int32),
                                     offsets[lo:lo + 1100], secs[lo:lo + 1100]))
    assert by_fetch.nbytes == by_message.nbytes and len(by_fetch) == len(by_message)
    a, b = by_message.seal(), by_fetch.seal()
    assert a.objects == b.objects and a.quarantined == b.quarantined == 2
    assert (a.first, a.last, a.rows) == (b.first, b.last, b.rows) == (100, 3099, 2998)
