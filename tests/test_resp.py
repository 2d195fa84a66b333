"""The numpy RESP packer against a command-by-command reference, and read back by Redis."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from auth_kappa.config import Config
from auth_kappa.state.redis_store import RedisWindowStore
from auth_kappa.state.resp import RespConnection, command, decimal, pack, widths
from auth_kappa.topology.keys import uuid_keys
from auth_kappa.topology.window_table import Rows


@given(st.lists(st.integers(0, 2**62), min_size=1, max_size=50))
def test_decimal_matches_str(values):
    arr = np.array(values, np.int64)
    w = widths(arr)
    for width in np.unique(w):
        pick = w == width
        assert decimal(arr[pick]).tolist() == [str(v).encode() for v in arr[pick]]


@settings(max_examples=50)
@given(st.lists(st.tuples(st.binary(min_size=5, max_size=5), st.binary(min_size=3, max_size=3),
                          st.floats(allow_nan=False)), min_size=1, max_size=20))
def test_pack_matches_one_command_at_a_time(rows):
    keys = np.array([k for k, _, _ in rows], "S5")
    fields = np.array([f for _, f, _ in rows], "S3")
    if any(len(k) != 5 for k in keys.tolist()) or any(len(f) != 3 for f in fields.tolist()):
        return   # numpy S strips trailing NULs; the store never sends such strings
    values = np.array([v for _, _, v in rows], "<f8")
    want = b"".join(command("HSET", k, f, v.tobytes()) for k, f, v in
                    zip(keys.tolist(), fields.tolist(), values, strict=True))
    assert pack(b"HSET", keys, fields, values) == want
    assert pack(b"EXPIRE", keys, b"60") == b"".join(command("EXPIRE", k, 60)
                                                    for k in keys.tolist())


def test_windows_of_every_decimal_width_read_back(stack, unique):
    """Window starts of 9 and 10 digits in one checkpoint (old and new data; a retention
    long enough to hold both)."""
    specs = Config.load(windows="1m", meter_retention="1m=1600w").window_specs()
    client = redis.Redis.from_url(stack.redis_url)
    store = RedisWindowStore(client, f"resp{unique}", specs)
    sid = str(uuid.UUID(int=99, version=4))
    starts = np.array([999_999_960, 1_772_409_600], np.int64)
    n = len(starts)
    keys, _ = uuid_keys(np.array([sid] * n, "S36"))
    k0, k1 = keys[:, 0].copy(), keys[:, 1].copy()
    rows = Rows(k0, k1, starts, np.array([1.5, 2.5]), np.array([3, 4]), np.array([0.5, 0.25]),
                np.array([1.0, 2.0]), np.zeros((n, 1), np.uint64), np.array([True, False]))
    try:
        store.checkpoint({("gas", "meter", 60): rows}, {"gas:0": 7}, {"gas:0": 1_772_409_660})
        got = store.read_windows("meter", "gas", 60, key=sid)
        assert got["window_start"].tolist() == starts.tolist()
        assert got["sum"].tolist() == [1.5, 2.5] and got["count"].tolist() == [3, 4]
        assert sorted(client.hkeys(store.meter_key(sid, "gas", 60))) == \
            [b"1772409600", b"999999960"]   # exact decimal fields: readers HMGET them
        assert store.offsets() == {"gas:0": 7}
        assert client.ttl(store.meter_key(sid, "gas", 60)) > 0
    finally:
        store.drop_namespace()


def _one_window(sid: str) -> Rows:
    keys, _ = uuid_keys(np.array([sid], "S36"))
    return Rows(keys[:, 0].copy(), keys[:, 1].copy(), np.array([1_772_409_600]), np.ones(1),
                np.ones(1, np.int64), np.ones(1), np.ones(1), np.zeros((1, 1), np.uint64),
                np.array([True]), np.zeros(1, np.int32))


def test_a_meter_key_of_another_type_is_replaced_by_our_window(stack, unique, caplog):
    """Someone wrote a string at a meter's key: EXEC fails that HSET and applies the rest.
    The windows are absolute, so the store puts this checkpoint's window back in place of
    the foreign value, and says so."""
    specs = Config.load(windows="1m").window_specs()
    client = redis.Redis.from_url(stack.redis_url)
    store = RedisWindowStore(client, f"resperr{unique}", specs)
    sid = str(uuid.UUID(int=7, version=4))
    try:
        client.set(store.meter_key(sid, "gas", 60), "not a hash")
        store.checkpoint({("gas", "meter", 60): _one_window(sid)}, {"gas:0": 1}, {})
        got = store.read_windows("meter", "gas", 60, key=sid)
        assert got["count"].tolist() == [1] and store.offsets() == {"gas:0": 1}
        assert "held another type" in caplog.text
    finally:
        store.drop_namespace()


@pytest.mark.parametrize("victim", ["stats", "state", "offsets"])
def test_a_shared_key_of_another_type_refuses_the_whole_checkpoint(stack, unique, victim):
    """Defect 3: a command failing inside EXEC must not leave state applied with the
    offsets advanced. The state deltas, offsets and counters are one script that checks
    every key before it writes: nothing of it is applied, and the error says which key."""
    from auth_kappa.state.redis_store import StoreCorrupted

    specs = Config.load(windows="1m").window_specs()
    client = redis.Redis.from_url(stack.redis_url)
    store = RedisWindowStore(client, f"respbad{unique}", specs)
    sid = str(uuid.UUID(int=8, version=4))
    state = Rows(np.array([5], np.uint64), np.zeros(1, np.uint64), np.array([1_772_409_600]),
                 np.ones(1), np.ones(1, np.int64), np.ones(1), np.ones(1), None)
    dirty = {("gas", "meter", 60): _one_window(sid), ("gas", "state", 60): state}
    try:
        store.checkpoint(dirty, {"gas:0": 1}, {}, stats={"accepted:gas": 1})
        key = {"stats": store.keys.stats, "state": store.state_key("gas", 60),
               "offsets": store.keys.offsets}[victim]
        before = {k: client.dump(k) for k in (store.keys.stats, store.state_key("gas", 60))}
        client.delete(key)
        client.rpush(key, "someone else's list")
        with pytest.raises(StoreCorrupted, match="CORRUPT"):
            store.checkpoint(dirty, {"gas:0": 2}, {}, stats={"accepted:gas": 1})
        for k, blob in before.items():
            if k != key:
                assert client.dump(k) == blob, f"{k} changed although the checkpoint failed"
        if victim != "offsets":
            assert store.offsets() == {"gas:0": 1}
    finally:
        store.drop_namespace()


@given(st.lists(st.integers(0, 2**62), max_size=30))
def test_pre_encoded_arguments_make_the_same_command(starts):
    """The dashboard encodes a page's window starts once and prefixes each key's HMGET."""
    from auth_kappa.state.resp import encoded, with_encoded

    assert with_encoded(b"HMGET", "auth:v1:m:{x}:gas:60", len(starts), encoded(starts)) == \
        command("HMGET", "auth:v1:m:{x}:gas:60", *starts)


def test_a_checkpoint_that_fails_half_sent_applies_nothing(stack, unique, monkeypatch):
    """The transaction goes out as it is packed: a failure after MULTI and part of the
    windows were sent closes the socket, so Redis drops the MULTI whole (no window, no
    offset), and the next checkpoint on the same store applies normally."""
    specs = Config.load(windows="1m,1h").window_specs()
    client = redis.Redis.from_url(stack.redis_url)
    store = RedisWindowStore(client, f"resphalf{unique}", specs)
    sid = str(uuid.UUID(int=9, version=4))
    dirty = {("gas", "meter", 60): _one_window(sid), ("gas", "meter", 3600): _one_window(sid)}
    real, calls = store._meter_commands, []

    def failing_second(*args, **kw):
        calls.append(args[1])
        if len(calls) == 2:
            raise MemoryError("packing failed half-way")
        return real(*args, **kw)

    try:
        monkeypatch.setattr(store, "_meter_commands", failing_second)
        with pytest.raises(MemoryError):
            store.checkpoint(dirty, {"gas:0": 1}, {})
        assert calls == [60, 3600], "the 1m windows were packed (and sent) first"
        assert not [c for c in client.client_list() if "x" in c["flags"]], \
            "a connection was left inside MULTI"
        assert not client.exists(store.meter_key(sid, "gas", 60))
        assert store.offsets() == {}
        monkeypatch.setattr(store, "_meter_commands", real)
        store.checkpoint(dirty, {"gas:0": 1}, {})
        assert store.read_windows("meter", "gas", 60, key=sid)["count"].tolist() == [1]
        assert store.offsets() == {"gas:0": 1}
    finally:
        store.drop_namespace()


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), max_size=40))
def test_first_of_each_meter_misses_none(pairs):
    """One TTL refresh per key: every meter keeps its first row, even two meters sharing
    the hashed half of their key (k0)."""
    from auth_kappa.topology.keys import first_of_each

    k0 = np.array([a for a, _ in pairs], np.uint64)
    k1 = np.array([b for _, b in pairs], np.uint64)
    first = first_of_each(k0, k1)
    want = [pairs.index(p) for p in dict.fromkeys(pairs)]
    assert set(np.flatnonzero(first).tolist()) >= set(want)
    assert {pairs[i] for i in np.flatnonzero(first)} == set(pairs)
    if len({a for a, _ in set(pairs)}) == len(set(pairs)):   # no two meters share a k0
        assert np.flatnonzero(first).tolist() == want          # exactly once each


@pytest.mark.parametrize("n", [1, 5000, 300_000])
def test_queued_replies_read_as_one_run_equal_the_reply_by_reply_read(stack, unique, n):
    """A transaction's replies through transaction_replies and through replies() on a
    second connection: the same list; 300k commands span many socket reads."""
    client = redis.Redis.from_url(stack.redis_url)
    key = f"auth:test:txn{unique}"
    body = pack(b"HSET", np.array([key.encode()] * n), decimal(np.arange(n, dtype=np.int64)),
                decimal(np.arange(n, dtype=np.int64) * 3))
    fast, slow = (RespConnection(client.connection_pool.connection_kwargs) for _ in range(2))
    try:
        fast.send(command("MULTI") + body + command("EXEC"))
        got = fast.transaction_replies(n)
        client.delete(key)
        want = slow.roundtrip(command("MULTI") + body + command("EXEC"), n + 2, check=False)
        assert got == want and got[-1] == [1] * n
        assert fast.roundtrip(command("PING"), 1) == [b"PONG"]   # nothing left unread
    finally:
        client.delete(key)
        fast.close()
        slow.close()


def test_a_command_refused_while_queued_and_a_broken_watch_come_back_as_replies(stack, unique):
    client = redis.Redis.from_url(stack.redis_url)
    key = f"auth:test:txnbad{unique}"
    sock = RespConnection(client.connection_pool.connection_kwargs)
    try:
        good = command("HSET", key, "a", "1")
        sock.send(command("MULTI") + good * 3 + command("HSET", key, "odd") + good
                  + command("EXEC"))
        got = sock.transaction_replies(5)
        assert got[:4] == [b"OK", b"QUEUED", b"QUEUED", b"QUEUED"] and got[5] == b"QUEUED"
        assert "wrong number of arguments" in str(got[4])
        assert "EXECABORT" in str(got[-1]) and client.exists(key) == 0
        sock.roundtrip(command("WATCH", key), 1)
        client.set(key, "changed")   # another client's write breaks the WATCH
        sock.send(command("MULTI") + command("DEL", key) + command("EXEC"))
        assert sock.transaction_replies(1) == [b"OK", b"QUEUED", None]
        assert client.get(key) == b"changed"
    finally:
        client.delete(key)
        sock.close()
