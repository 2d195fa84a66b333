"""Checkpoints commit one Redis transaction per partition, and stay exact across a crash
between two of them (runtime/commits.py)."""

from __future__ import annotations

import logging
import time
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
@pytest.mark.parametrize("refresh", [0.0, 3600.0], ids=["due", "not-due"])
def test_the_meter_set_lives_while_its_partition_writes(stack, unique, refresh):
    """A fleet with no new meter still renews its partition's meter set (a restart reads
    it to reopen windows and to know which meters' retention needs a sweep): at most
    every `index_refresh` s, with the partition's next new window."""
    specs = Config.load(windows="1m").window_specs()
    store = RedisWindowStore.connect(stack.redis_url, f"ttl{unique}", specs)
    sid = str(uuid.UUID(int=801, version=4))
    rt = LiveRuntime(Topology(specs, grace=0), store, emit=None, commit_interval=3600)
    rt.assign([("gas", 0)])
    key = store.meters_key("gas", 0)

    def minute(m: int, offset: int) -> None:
        end = T0 + 60 * m + 5
        rt.process("gas", [Message(f"{sid},A,household,{end - 5},WA,1.0,{end}".encode(),
                                   0, offset)])
        rt.checkpoint()

    try:
        minute(0, 0)
        full = store.client.ttl(key)
        assert full > 86400
        store.client.expire(key, 100)     # as if no meter had joined for ~the whole TTL
        store.index_refresh = refresh
        minute(1, 1)                      # a known meter's new window
        assert (store.client.ttl(key) > 100) == (refresh == 0.0)
    finally:
        store.drop_namespace()


@pytest.mark.stack
def test_a_window_final_and_unchanged_is_not_written_again(stack, unique):
    """A window already in Redis that turns final with no reading since is not rewritten
    (no HSET, not in the change notice); only its first values go (HDEL). One that got a
    reading in the step that made it final is written, and Redis holds both exactly."""
    specs = Config.load(windows="1m").window_specs()
    store = RedisWindowStore.connect(stack.redis_url, f"held{unique}", specs)
    a, b, c = (str(uuid.UUID(int=n, version=4)) for n in (701, 702, 703))
    bodies: list[bytes] = []
    real = store._commands

    def recording(*args, **kw):
        parts = list(real(*args, **kw))   # the transaction's parts, as packed
        bodies.append(b"".join(parts))
        return iter(parts)

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
        assert on(b"HSET", store.meter_key(a, "gas", 60))
        # c gets a reading of minute 0 in the batch whose clock makes minute 0 final
        rt.process("gas", [Message(line(c, T0 + 25, 3.0), 0, 13),
                           Message(line(b, T0 + 95, 1.0), 0, 14)])
        rt.checkpoint()
        assert not on(b"HSET", store.meter_key(a, "gas", 60)), "a held window was rewritten"
        assert on(b"HDEL", store.first_key(a, "gas", 60))
        assert on(b"HSET", store.meter_key(c, "gas", 60))
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
        assert store.client.hlen(store.first_key(a, "gas", 60)) == 0
    finally:
        store.drop_namespace()


@pytest.mark.stack
def test_first_values_of_final_windows_go_over_later_checkpoints(stack, unique):
    """A minute turning final at once for every meter, unchanged: their first values go
    `cleanup_rate` a second since the last checkpoint (not all in the one transaction
    every partition's next readings wait behind), windows stay exact, and a waited
    checkpoint leaves none behind."""
    specs = Config.load(windows="1m").window_specs()
    store = RedisWindowStore.connect(stack.redis_url, f"spread{unique}", specs)
    sids = [str(uuid.UUID(int=900 + n, version=4)) for n in range(30)]
    rt = LiveRuntime(Topology(specs, grace=30), store, emit=lambda *x: None,
                     commit_interval=3600, insights=None)
    rt.cleanup_rate = 8
    rt.assign([("gas", 0)])

    def line(sid: str, end: int) -> bytes:
        return f"{sid},A,household,{end - 5},WA,0.5,{end}".encode()

    def left() -> int:   # meters still holding minute 0's first values
        pipe = store.client.pipeline()
        for sid in sids:
            pipe.hexists(store.first_key(sid, "gas", 60), str(T0))
        return sum(pipe.execute())

    try:
        batch = [line(sid, T0 + 5 * k) for k in (1, 2) for sid in sids]
        rt.process("gas", [Message(v, 0, i) for i, v in enumerate(batch)])
        rt.checkpoint()
        assert left() == 30
        rt.process("gas", [Message(line(sids[0], T0 + 95), 0, len(batch))])
        for remaining in (22, 14):
            rt._last_commit = time.monotonic() - 1.0   # a second since the last one
            rt.submit(rt.prepare())
            assert left() == remaining
        assert [store.read_windows("meter", "gas", 60, key=sid)["count"].tolist()[:1]
                for sid in sids] == [[2]] * 30
        rt.checkpoint()
        assert left() == 0
        assert store.offsets() == {"gas:0": len(batch) + 1}
    finally:
        store.drop_namespace()


@pytest.mark.stack
def test_reading_goes_on_while_a_checkpoint_lands_until_it_holds_too_much(stack, unique):
    """While Redis applies one checkpoint the next waits (readings go on), but no further
    than max_ahead: final windows held for it, or readings a crash would replay."""
    import threading

    specs = Config.load(windows="1m,1h").window_specs()
    store = RedisWindowStore.connect(stack.redis_url, f"ahead{unique}", specs)
    df = readings(meters=30, minutes=12, seed=3)
    msgs = messages(df)
    release, real = threading.Event(), store.checkpoint

    def slow(*args, **kw):
        release.wait(30)
        return real(*args, **kw)

    store.checkpoint = slow
    try:
        rt = runtime(store, specs)
        rt.commit_interval, rt.auto_checkpoint = 0.0, False   # due() asked here alone
        feed(rt, msgs, {0: 0, 1: 0}, 0.2)
        rt.submit(rt.prepare(), wait=False)          # Redis now "busy" with it
        assert not rt.due()
        feed(rt, msgs, {p: int(len(m) * 0.2) for p, m in msgs.items()}, 0.3)
        held = rt.held_final()
        rt.max_ahead = (10**9, held + 1)
        assert held > 0 and not rt.due()              # minutes went final: still waits
        feed(rt, msgs, {p: int(len(m) * 0.3) for p, m in msgs.items()}, 0.5)
        assert rt.held_final() > held and rt.due()     # too much held: this one waits for it
        rt.max_ahead = (1, 10**9)
        assert rt.due()                              # readings past the bound: same
        release.set()
        rt.checkpoint()
        assert rt.held_final() == 0
        feed(rt, msgs, {p: int(len(m) * 0.5) for p, m in msgs.items()}, 1.0)
        rt.checkpoint()
        check(store, df)
    finally:
        release.set()
        store.drop_namespace()


@pytest.mark.stack
def test_a_fetch_waits_no_longer_than_until_the_next_checkpoint_is_due(stack, unique):
    """until_due bounds a fetch's wait (KafkaSource._step): the interval's rest after a
    checkpoint, counting down, and 0 once it passed, so a quiet stream checkpoints every
    commit_interval, not on every other 0.2 s fetch."""
    import time

    specs = Config.load(windows="1m").window_specs()
    store = RedisWindowStore.connect(stack.redis_url, f"due{unique}", specs)
    rt = LiveRuntime(Topology(specs, grace=30), store, emit=lambda *x: None,
                     commit_interval=0.3)
    rt.assign([("gas", 0)])
    try:
        sid = str(uuid.UUID(int=5, version=4))
        rt.process("gas", [Message(f"{sid},A,household,{T0},WA,1.0,{T0 + 5}".encode(), 0, 0)])
        rt.checkpoint()
        left = rt.until_due()
        assert 0.2 < left <= 0.3 and not rt.due()
        time.sleep(0.1)
        assert rt.until_due() < left - 0.05
        time.sleep(0.25)
        assert rt.until_due() == 0.0 and rt.due()
    finally:
        store.drop_namespace()
