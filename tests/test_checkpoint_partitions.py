"""Checkpoints commit one Redis transaction per partition, and stay exact across a crash
between two of them (runtime/commits.py)."""

from __future__ import annotations

import logging
import uuid

import numpy as np
import pandas as pd
import pytest

from auth_kappa.config import Config
from auth_kappa.runtime.live import LiveRuntime
from auth_kappa.state.redis_store import RedisWindowStore
from auth_kappa.topology.decode import Message
from auth_kappa.topology.processor import Topology
from tests.support.partitioned import T0, check, expected, feed, messages, readings, runtime


@pytest.mark.stack
def test_each_partition_commits_alone_and_a_crash_between_them_stays_exact(stack, unique):
    specs = Config.load(windows="1m,1h").window_specs()
    store = RedisWindowStore.connect(stack.redis_url, f"part{unique}", specs)
    df = readings(meters=30, minutes=20, seed=7)
    msgs = messages(df)
    calls: list[dict] = []
    real = store.checkpoint

    def recording(dirty, offsets, highs, generations=None, stats=None, **kw):
        calls.append(dict(offsets))
        if len(calls) == crash_at[0]:
            raise ConnectionError("injected: the worker died between two transactions")
        return real(dirty, offsets, highs, generations, stats, **kw)

    crash_at = [0]
    store.checkpoint = recording
    try:
        rt = runtime(store, specs)
        feed(rt, msgs, {0: 0, 1: 0}, 0.4)
        rt.checkpoint()
        assert len(calls) == 2 and all(len(c) == 1 for c in calls)  # one per partition
        assert {next(iter(c)) for c in calls} == {"gas:0", "gas:1"}
        before = store.offsets()

        feed(rt, msgs, {p: before[f"gas:{p}"] for p in (0, 1)}, 0.7)
        crash_at[0] = len(calls) + 2          # the first partition lands, the second not
        with pytest.raises(ConnectionError):
            rt.checkpoint()
        after = store.offsets()
        landed = [p for p in after if after[p] != before[p]]
        assert len(landed) == 1               # a cut between the two transactions

        store.checkpoint = real               # a new worker takes over from Redis
        rt = runtime(store, specs)
        seek = rt.assign([("gas", 0), ("gas", 1)])
        feed(rt, msgs, {p: seek[("gas", p)] for p in (0, 1)}, 1.0)
        rt.checkpoint()
        check(store, df)
    finally:
        store.drop_namespace()


@pytest.mark.stack
def test_a_meter_on_two_partitions_falls_back_to_one_transaction(stack, unique, caplog):
    specs = Config.load(windows="1m").window_specs()
    store = RedisWindowStore.connect(stack.redis_url, f"mixed{unique}", specs)
    df = readings(meters=6, minutes=5, seed=3)
    df.loc[df.index % 7 == 0, "partition"] = 1 - df.loc[df.index % 7 == 0, "partition"]
    msgs = messages(df)
    calls: list[dict] = []
    real = store.checkpoint

    def recording(dirty, offsets, highs, generations=None, stats=None, **kw):
        calls.append(dict(offsets))
        return real(dirty, offsets, highs, generations, stats, **kw)

    store.checkpoint = recording
    try:
        rt = runtime(store, specs)
        with caplog.at_level(logging.WARNING, logger="auth_kappa.live"):
            feed(rt, msgs, {0: 0, 1: 0}, 1.0)
            rt.checkpoint()
        assert calls == [{"gas:0": len(msgs[0]), "gas:1": len(msgs[1])}]
        assert "more than one partition" in caplog.text
        got = store.read_windows("state", "gas", 60)
        want = expected(df, 60)
        assert got["count"].tolist() == want["count"].tolist()
    finally:
        store.drop_namespace()


@pytest.mark.stack
def test_windows_open_at_a_crash_are_published_when_they_close(stack, unique):
    """Meter A reports minute 0, then falls silent; the worker dies before minute 0 is
    final. Its successor never sees a reading of A, yet must publish A's minute-0 window
    (and A's hour) to the `windows` topic when the watermark closes them."""
    from auth_kappa.topology.frames import read_ipc
    from auth_kappa.topology.keys import uuid_text

    specs = Config.load(windows="1m,1h").window_specs()
    store = RedisWindowStore.connect(stack.redis_url, f"reopen{unique}", specs)
    a, b = (str(uuid.UUID(int=n, version=4)) for n in (501, 502))

    def line(sid: str, end: int, value: float) -> bytes:
        return f"{sid},A,household,{end - 5},WA,{value},{end}".encode()

    first = [line(a, T0 + 5 * k, 0.5) for k in range(12)] + \
        [line(b, T0 + 5 * k, 1.0) for k in range(9)]             # up to T0+40: not final
    later = [line(b, T0 + 60 + 5 * k, 1.0) for k in range(0, 12 * 62)]   # past the hour
    sent: list[bytes] = []

    def runtime() -> LiveRuntime:
        rt = LiveRuntime(Topology(specs, grace=30), store,
                         emit=lambda topic, key, value, headers:
                         sent.append(value) if topic == "windows" else None,
                         commit_interval=3600)
        rt.assign([("gas", 0)])
        return rt

    try:
        rt = runtime()
        rt.process("gas", [Message(v, 0, i) for i, v in enumerate(first)])
        rt.checkpoint()
        assert sent == []                     # nothing final yet; then the worker dies
        rt = runtime()
        rt.process("gas", [Message(v, 0, len(first) + i) for i, v in enumerate(later)])
        rt.checkpoint()
        frames = pd.concat([read_ipc(v).to_pandas() for v in sent])
        mine = frames[frames["key"] == a].set_index("window_end")
        assert mine.loc[T0 + 60, "count"] == 12 and mine.loc[T0 + 60, "sum"] == 6.0
        assert mine.loc[T0 + 3600, "count"] == 12     # A's hour, also never touched again
        k0, k1 = store.indexed_meters("gas", 0)   # the partition's meter index
        assert sorted(uuid_text(k0, k1)) == sorted([a, b])
    finally:
        store.drop_namespace()


@pytest.mark.stack
def test_a_final_window_moves_to_the_final_hash_and_unchanged_is_no_news(stack, unique):
    """Changed windows are written to the meter's open hash. One that turns final moves
    to the final hash after the transaction (move_final.lua); if no reading came since it
    was stored, the transaction does not write it and the change notice leaves it out
    (readers following it hold it already). One that got a reading in the step that made
    it final is news, and Redis holds both exactly."""
    specs = Config.load(windows="1m").window_specs()
    store = RedisWindowStore.connect(stack.redis_url, f"held{unique}", specs)
    a, b, c = (str(uuid.UUID(int=n, version=4)) for n in (701, 702, 703))
    bodies: list[bytes] = []
    real = store._commands

    def recording(*args, **kw):
        out = real(*args, **kw)
        bodies.append(out[0])
        return out

    def line(sid: str, end: int, value: float) -> bytes:
        return f"{sid},A,household,{end - 5},WA,{value},{end}".encode()

    def on(cmd: bytes, key: str) -> bool:
        return f"{cmd.decode()}\r\n${len(key)}\r\n{key}\r\n".encode() in bodies[-1]

    store._commands = recording
    rt = LiveRuntime(Topology(specs, grace=30), store, emit=lambda *x: None,
                     commit_interval=3600)
    rt.assign([("gas", 0)])
    try:
        first = [line(a, T0 + 5 * k, 0.5) for k in range(12)] + [line(c, T0 + 20, 2.0)]
        rt.process("gas", [Message(v, 0, i) for i, v in enumerate(first)])
        rt.checkpoint()
        assert on(b"HSET", store.open_key(a, "gas", 60))
        assert not on(b"HSET", store.meter_key(a, "gas", 60))
        # c gets a reading of minute 0 in the batch whose clock makes minute 0 final
        rt.process("gas", [Message(line(c, T0 + 25, 3.0), 0, 13),
                           Message(line(b, T0 + 95, 1.0), 0, 14)])
        rt.checkpoint()
        assert not on(b"HSET", store.open_key(a, "gas", 60)), "a held window was rewritten"
        assert on(b"HSET", store.open_key(c, "gas", 60))
        assert on(b"HSET", store.open_key(b, "gas", 60))
        assert not any(on(b"HSET", store.meter_key(s, "gas", 60)) for s in (a, b, c))
        stream = store.keys.changes()[0]
        (_, fields), = store.client.xrevrange(stream, count=1)
        blob = fields.get(b"m:gas:60", b"")
        from auth_kappa.state.codec import CHANGE
        from auth_kappa.topology.keys import uuid_text
        sent = np.frombuffer(blob, CHANGE)
        assert sorted(uuid_text(sent["k0"], sent["k1"])) == sorted([b, c])
        got = {s: store.read_windows("meter", "gas", 60, key=s) for s in (a, c)}
        assert got[a]["count"].tolist() == [12] and got[a]["sum"].tolist() == [6.0]
        assert got[c]["count"].tolist() == [2] and got[c]["sum"].tolist() == [5.0]
        for s in (a, c):   # moved after the transaction
            assert store.client.hlen(store.open_key(s, "gas", 60)) == 0
            assert store.client.hlen(store.meter_key(s, "gas", 60)) == 1
    finally:
        store.drop_namespace()


@pytest.mark.stack
def test_a_minute_of_final_windows_moves_over_several_checkpoints(stack, unique):
    """10,000 windows turning final at once move a share per checkpoint (readers see the
    same values all along, from either hash); one a correction rewrote meanwhile keeps
    the correction's value (only what the open hash still holds moves)."""
    from auth_kappa.state import redis_store
    from auth_kappa.topology.keys import uuid_keys
    from auth_kappa.topology.window_table import Rows

    specs = Config.load(windows="1m").window_specs()
    store = RedisWindowStore.connect(stack.redis_url, f"moves{unique}", specs)
    other = RedisWindowStore.connect(stack.redis_url, f"moves{unique}", specs)
    n = 10_000
    sids = np.array([str(uuid.UUID(int=i + 1, version=4)) for i in range(n)], "S36")
    keys, _ = uuid_keys(sids)
    sums = np.arange(n, dtype=np.float64)

    def rows(values: np.ndarray, pick: np.ndarray) -> Rows:
        m = len(pick)
        return Rows(keys[pick, 0].copy(), keys[pick, 1].copy(), np.full(m, T0, np.int64),
                    values[pick], np.ones(m, np.int64), values[pick], values[pick],
                    np.ones((m, 1), np.uint64), np.zeros(m, bool),   # stored open before
                    final=np.ones(m, bool))

    def where() -> tuple[int, int]:
        pipe = store.client.pipeline(transaction=False)
        for s in sids.astype(str):
            pipe.hexists(store.meter_key(s, "gas", 60), str(T0))
        moved = int(sum(pipe.execute()))
        return moved, n - moved

    def read(i: int) -> float:
        return float(store.read_windows("meter", "gas", 60, key=sids[i].decode())["sum"][0])

    try:
        store.checkpoint({("gas", "meter", 60): rows(sums, np.arange(n))}, {"gas:0": 1}, {})
        first = where()[0]   # a share: as many as LATER_SECONDS clear in the time since
        assert redis_store.LATER_MIN <= first < n
        assert [read(i) for i in (0, n - 1)] == [0.0, n - 1.0]   # moved, and not yet
        fixed = sums.copy()
        fixed[n - 1] = -1.0   # a correction rewrites a window still waiting to move
        other.checkpoint({("gas", "meter", 60): rows(fixed, np.array([n - 1]))}, {}, {})
        assert read(n - 1) == -1.0
        store.checkpoint({}, {"gas:0": 1}, {})   # a heartbeat moves the next share
        assert first + 1 + redis_store.LATER_MIN <= where()[0] < n
        store.settle()
        assert where() == (n, 0)
        got = store.stored_windows("gas", 60, keys[:, 0], keys[:, 1], np.full(n, T0))[0]
        assert got["sum"].tolist() == fixed.tolist() and (got["count"] == 1).all()
        assert not list(store.client.scan_iter(match=f"{store.prefix}o:*", count=1000))
    finally:
        store.drop_namespace()
