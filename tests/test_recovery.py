"""One recovery path, against the real Redis and a real Redis Cluster: after a failed
checkpoint, a Redis that lost acknowledged writes (a failover to a lagging replica), a
restart or a takeover from a lagging owner, the windows equal a brute force over the
input, and nothing is published or routed late twice."""

from __future__ import annotations

import pandas as pd
import pytest
import redis

from auth_kappa.config import Config
from auth_kappa.runtime.live import LiveRuntime
from auth_kappa.state.redis_store import RedisWindowStore, RolledBack
from auth_kappa.topology.decode import Message
from auth_kappa.topology.frames import read_ipc
from auth_kappa.topology.processor import Topology
from tests.support.partitioned import check, feed, messages, readings, runtime

pytestmark = pytest.mark.stack


@pytest.fixture(params=["redis", "cluster"])
def store(request, stack, unique):
    cluster = request.param == "cluster"
    url = request.getfixturevalue("redis_cluster").seeds_url if cluster else stack.redis_url
    s = RedisWindowStore.connect(url, f"rec{unique}",
                                 Config.load(windows="1m,1h").window_specs(), cluster=cluster)
    s.set_partitions({"gas": 2})   # where a cluster's readers find each meter
    yield s
    s.drop_namespace()


def _at(store: RedisWindowStore) -> dict[int, int]:
    return {p: store.offsets()[f"gas:{p}"] for p in (0, 1)}


def test_nothing_is_committed_past_a_failed_checkpoint(store):
    """Defect 3: the checkpoint after a failed one (e.g. a graceful stop's) must not write
    newer offsets without the failed one's state."""
    df = readings(meters=30, minutes=20, seed=11)
    msgs = messages(df)
    real, failing = store.checkpoint, [0]

    def flaky(*args, **kw):
        if failing[0]:     # the next `failing` transactions fail, then Redis answers again
            failing[0] -= 1
            raise redis.ConnectionError("injected: the connection dropped mid-checkpoint")
        return real(*args, **kw)

    store.checkpoint = flaky
    rt = runtime(store, store.windows)
    feed(rt, msgs, {0: 0, 1: 0}, 0.3)
    rt.checkpoint()
    start = _at(store)
    feed(rt, msgs, start, 0.6)
    failing[0] = 1
    rt.submit(rt.prepare(), wait=False)   # fails in the writer thread
    with pytest.raises(redis.ConnectionError):
        rt.checkpoint()                # the failure surfaces at the next checkpoint...
    with pytest.raises(redis.ConnectionError):
        rt.checkpoint()                # ...and a last one (shutdown) commits nothing
    assert _at(store) == start
    seek = rt.assign([("gas", 0), ("gas", 1)])     # the recovery path
    feed(rt, msgs, {p: seek[("gas", p)] for p in (0, 1)}, 1.0)
    rt.checkpoint()
    check(store, df)


def test_a_redis_that_lost_acknowledged_writes_is_detected(store):
    """Redis restarted from an AOF that missed the last second, or failed over to a lagging
    replica: our next checkpoint must not build on state Redis no longer has."""
    df = readings(meters=30, minutes=20, seed=12)
    msgs = messages(df)
    rt = runtime(store, store.windows)
    feed(rt, msgs, {0: 0, 1: 0}, 0.3)
    rt.checkpoint()
    keys = list(store.client.scan_iter(match=f"{store.prefix}*"))
    older = {k: (store.client.dump(k), store.client.pttl(k)) for k in keys}
    feed(rt, msgs, _at(store), 0.6)
    rt.checkpoint()                    # acknowledged...
    store.client.unlink(*store.client.scan_iter(match=f"{store.prefix}*"))
    for k, (blob, ttl) in older.items():   # ...and lost: Redis is back at the older cut
        store.client.restore(k, max(ttl, 0), blob, replace=True)
    feed(rt, msgs, {0: int(len(msgs[0]) * 0.6), 1: int(len(msgs[1]) * 0.6)}, 0.8)
    with pytest.raises(RolledBack):
        rt.checkpoint()
    seek = rt.assign([("gas", 0), ("gas", 1)])
    assert {p: seek[("gas", p)] for p in (0, 1)} == {p: int(len(msgs[p]) * 0.3)
                                                    for p in (0, 1)}
    feed(rt, msgs, {p: seek[("gas", p)] for p in (0, 1)}, 1.0)
    rt.checkpoint()
    check(store, df)


def _published(store: RedisWindowStore, sent: list) -> LiveRuntime:
    rt = LiveRuntime(Topology(store.windows, grace=30), store,
                     emit=lambda topic, key, value, headers:
                     sent.append(value) if topic == "windows" else None,
                     commit_interval=3600)
    return rt


def test_a_restart_publishes_no_final_window_twice(store):
    """Defect 5: with gas:0 ahead of gas:1, a restart used to restore the lowest clock for
    both, reopen gas:0's already-final windows and publish them again."""
    df = readings(meters=20, minutes=30, seed=13)
    msgs = messages(df)
    sent: list[bytes] = []
    for p, upto in ((0, 0.6), (1, 0.2)):    # gas:0 to minute 18; gas:1's owner lags at 6
        rt = _published(store, sent)
        rt.assign([("gas", p)])
        rt.process("gas", msgs[p][:int(len(msgs[p]) * upto)])
        rt.checkpoint()
    rt = _published(store, sent)            # both die; one worker takes both partitions
    seek = rt.assign([("gas", 0), ("gas", 1)])
    feed(rt, msgs, {p: seek[("gas", p)] for p in (0, 1)}, 1.0)
    rt.checkpoint()
    frames = pd.concat([read_ipc(v).to_pandas() for v in sent])
    twice = frames[frames.duplicated(["key", "window_start", "window_end"], keep=False)]
    assert twice.empty, twice
    assert len(frames) > 0
    check(store, df)


def test_a_partition_taken_over_from_a_lagging_owner_routes_nothing_late(store):
    """Defect 2: worker A is at minute 18 on gas:0 and takes gas:1, committed at minute 6
    by its lagging owner B: gas:1's backlog is on time in its own partition."""
    df = readings(meters=20, minutes=24, seed=14)
    msgs = messages(df)
    a, b = (LiveRuntime(Topology(store.windows, grace=30), store, emit=lambda *x: None,
                        commit_interval=3600) for _ in range(2))
    b.assign([("gas", 1)])
    b.process("gas", msgs[1][:int(len(msgs[1]) * 0.25)])
    b.checkpoint()
    a.assign([("gas", 0)])
    a.process("gas", msgs[0][:int(len(msgs[0]) * 0.75)])
    a.checkpoint()
    seek = a.assign([("gas", 0), ("gas", 1)])             # B left the group
    feed(a, msgs, {p: seek[("gas", p)] for p in (0, 1)}, 1.0)
    a.checkpoint()
    assert a.counters.late == 0 and b.counters.late == 0
    check(store, df)


def test_messages_keep_their_partition_order_whatever_the_batch(store):
    """The same partition's messages in one batch or in many: the same late readings."""
    sid = "00000000-0000-4000-8000-00000000abcd"
    t0 = 1_772_409_600

    def line(end: int) -> bytes:
        return f"{sid},A,household,{end - 5},WA,1.0,{end}".encode()

    ends = [t0 + 300, t0 + 5, t0 + 310, t0 + 200, t0 + 320]   # 5 and 200 are late
    msgs = [Message(line(e), 0, i) for i, e in enumerate(ends)]
    lates = []
    for batches in ([msgs], [[m] for m in msgs], [msgs[:2], msgs[2:]]):
        rt = LiveRuntime(Topology(store.windows, grace=30), store, emit=lambda *x: None,
                         commit_interval=3600)
        rt.assign([("gas", 0)])
        for batch in batches:
            rt.process("gas", batch)
        lates.append(rt.counters.late)
        store.drop_namespace()
    assert lates == [2, 2, 2]


def test_a_partition_given_away_is_not_held_any_more(store):
    """A worker that owned gas partitions and now owns only electricity ones holds no
    clock of gas any more: nothing of gas is processed, committed or reopened by it."""
    df = readings(meters=10, minutes=6, seed=15)
    rt = runtime(store, store.windows)                  # owns gas:0 and gas:1
    feed(rt, messages(df), {0: 0, 1: 0}, 0.7)
    rt.assign([("electricity", 0)])                     # gas went to another worker
    assert not rt.owns("gas", 0) and not rt.owns("gas", 1) and rt.owns("electricity", 0)
    assert rt.topology.watermarks["gas"].partitions() == []
