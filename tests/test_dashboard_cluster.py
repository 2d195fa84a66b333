"""The live dashboard on a Redis Cluster (AUTH_REDIS_CLUSTER=1): an in-process LiveRuntime
writes readings into the session's private cluster, the dashboard serves them as the
read-only user `stack up` set on every node, and a household's windows, the fleet map's
per-state windows, the watermark and the counters equal a brute force over the readings."""

from __future__ import annotations

import json
import os
import uuid
from urllib.parse import unquote, urlsplit

import numpy as np
import pandas as pd
import pytest
import redis
from redis.cluster import RedisCluster

from auth_kappa.cli.main import main as cli
from auth_kappa.config import Config
from auth_kappa.errors import UserError
from auth_kappa.runtime.live import LiveRuntime
from auth_kappa.state.clients import sync_client
from auth_kappa.state.layout import Layout
from auth_kappa.state.redis_store import RedisWindowStore
from auth_kappa.topology.decode import Message
from auth_kappa.topology.partitioner import partitions_of
from auth_kappa.topology.processor import Topology
from auth_kappa.topology.schema import STATES as ALL_STATES
from dashboards import acl, cluster_reader, registry, serve
from tests.support.browser import start_server
from tests.support.dashboard import SECRET_ENV

pytestmark = [pytest.mark.stack, pytest.mark.slow]
TOKEN = "cluster-operator-token-0123456789"
COUNTS = {"gas": 3, "electricity": 2}            # source partitions per utility
T0 = 1_772_409_600 + 20 * 3600                   # 20:00 UTC: one local day in every US zone
STATES = ("CA", "NY", "TX", "HI", "AK")
METERS, STEPS, DUPLICATES = 30, 144, 5           # 12 minutes of 5 s readings per meter


def _readings(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sids = [str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(METERS)]
    rows = []
    for u, n in COUNTS.items():
        parts = partitions_of([s.encode() for s in sids], n)
        for i, sid in enumerate(sids):
            ends = T0 + 5 * np.arange(1, STEPS + 1) + i % 5   # meters not in lockstep
            values = np.round(rng.uniform(0, 3, STEPS), 4)
            rows.append(pd.DataFrame({"utility": u, "sid": sid, "state": STATES[i % 5],
                                      "end_ts": ends, "value": values,
                                      "partition": int(parts[i])}))
    return pd.concat(rows, ignore_index=True)


@pytest.fixture
def fed(redis_cluster, unique):
    """Readings written by a LiveRuntime (duplicates resent), the registry loaded; dropped
    after."""
    env = {**redis_cluster.env, "AUTH_NAMESPACE": f"dc{unique}", "AUTH_GROUP": f"dc{unique}",
           "AUTH_STACK_DIR": str(redis_cluster.home)}
    config = Config.load(env=env)
    store = RedisWindowStore.from_config(config)
    assert store.cluster
    df = _readings(7)
    assert df.groupby("utility")["partition"].nunique().to_dict() == COUNTS   # none idle
    rt = LiveRuntime(Topology(config.window_specs(), grace=config.grace), store,
                     emit=lambda *a: None, commit_interval=3600)
    rt.place(COUNTS)
    rt.assign([(u, p) for u, n in COUNTS.items() for p in range(n)])
    offsets: dict[tuple[str, int], int] = {}
    for minute, chunk in df.groupby(df["end_ts"] // 60):   # every partition, minute by minute
        for (u, p), part in chunk.sort_values("end_ts").groupby(["utility", "partition"]):
            lines = [f"{r.sid},Owner,household,{r.end_ts - 5},{r.state},{r.value},{r.end_ts}"
                     for r in part.itertuples()]
            if minute == df["end_ts"].max() // 60:
                lines += lines[:DUPLICATES]                   # resent: counted, not added
            start = offsets.get((u, p), 0)
            rt.process(u, [Message(x.encode(), p, start + k) for k, x in enumerate(lines)])
            offsets[(u, p)] = start + len(lines)
        rt.checkpoint()
    prefix = f"auth:reg{unique}:"
    client = RedisCluster.from_url(redis_cluster.url)
    meters = df.drop_duplicates("sid")
    registry.load(client, [{"service_id": r.sid, "user_name": f"Owner {i}", "type": "household",
                            "state": r.state, "registered_ts": "0"}
                           for i, r in enumerate(meters.itertuples())], prefix=prefix)
    yield {"df": df, "env": {**env, "AUTH_REGISTRY_PREFIX": prefix}, "config": config,
           "store": store, "prefix": prefix}
    store.drop_namespace()
    for node in client.get_primaries():
        for key in node.redis_connection.scan_iter(match=f"{prefix}*", count=1000):
            node.redis_connection.unlink(key)
    client.close()


def _windows(df: pd.DataFrame, by: list[str], size: int) -> pd.DataFrame:
    """The brute force: tumbling windows over end_ts, start = floor(end_ts / size) * size."""
    out = df.assign(window_start=df["end_ts"] // size * size).groupby([*by, "window_start"])
    return out["value"].agg(["sum", "count", "min", "max"]).reset_index()


def _get(server, path: str) -> dict:
    status, body, _ = server.get(path, TOKEN)
    assert status == 200, body
    return json.loads(body)


def test_dashboard_reads_a_redis_cluster_exactly(fed, redis_cluster, tmp_path):
    df, env = fed["df"], fed["env"]
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_DASHBOARD_",
                                                                      "AUTH_REDIS"))}
    # no AUTH_DASHBOARD_REDIS_URL: the read-only user `stack up` set on the cluster's nodes,
    # found for seeds listed in any order
    seeds = "redis://" + ",".join(f"127.0.0.1:{p}" for p in redis_cluster.ports()[::-1]) + "/0"
    server = start_server([], {**base, **env, **SECRET_ENV, "AUTH_REDIS_URL": seeds},
                          tmp_path / "dash.log", TOKEN)
    try:
        summary = _get(server, "/api/fleet/summary")
        assert summary["source"] == "redis" and summary["namespace"] == env["AUTH_NAMESPACE"]
        assert summary["meters"] == METERS
        sid = df["sid"].iloc[-1]       # search: the index, then each meter's registry hash
        found = _get(server, f"/api/meters?q={sid[:8]}&limit=5")["meters"]
        assert [m["service_id"] for m in found] == [sid]
        assert found[0]["state"] == df.loc[df["sid"] == sid, "state"].iloc[0]
        for u in COUNTS:
            mine = df[df["utility"] == u]
            per = summary["utilities"][u]
            clocks = mine.groupby("partition")["end_ts"].max()   # each partition's clock
            assert (per["newest"], per["watermark"]) == (clocks.max(), clocks.min())
            assert (per["accepted"], per["duplicates"]) == (len(mine), DUPLICATES * COUNTS[u])
            assert per["late"] == per["quarantined"] == 0
            assert per["today"]["count"] == len(mine)
            assert per["today"]["sum"] == pytest.approx(mine["value"].sum(), rel=1e-12)

            # the fleet map: per-state totals over the last hour of 1m windows
            states = _get(server, f"/api/fleet/states?utility={u}&range=hour")
            t = int(mine["end_ts"].max())
            starts = [t // 60 * 60 - 60 * (59 - i) for i in range(60)]
            assert (states["from"], states["to"]) == (starts[0], starts[-1] + 60)
            ref = mine.groupby("state")["value"].agg(["sum", "count"])
            for s, got in states["states"].items():
                want = ref.loc[s] if s in ref.index else {"sum": 0.0, "count": 0}
                assert got["count"] == want["count"], s
                assert got["sum"] == pytest.approx(want["sum"], rel=1e-12, abs=1e-9), s

            # a household per partition: its page and its stored windows
            for sid in mine.drop_duplicates("partition")["sid"]:
                _household(server, mine[mine["sid"] == sid], u, sid)
        metrics = server.get("/metrics", TOKEN)[1].decode()
        assert "auth_dashboard_rerouted_reads_total 0\n" in metrics   # all one trip per node
    finally:
        server.stop()


def _household(server, mine: pd.DataFrame, u: str, sid: str) -> None:
    page = _get(server, f"/api/meters/{sid}")
    assert page["meter"]["state"] == mine["state"].iloc[0]
    card = page["utilities"][u]
    ref = _windows(mine, [], 60).set_index("window_start")
    series = card["series"]
    for w, count, total in zip(series["start"], series["count"], series["sum"], strict=True):
        want = ref.loc[w] if w in ref.index else None
        assert count == (0 if want is None else want["count"]), w
        assert total == (None if want is None else pytest.approx(want["sum"], rel=1e-12)), w
    assert card["today"]["count"] == len(mine)
    assert card["today"]["sum"] == pytest.approx(mine["value"].sum(), rel=1e-12)
    last = ref.iloc[-1]
    assert card["current"]["window_start"] == ref.index[-1]
    assert card["current"]["max"] == pytest.approx(last["max"])
    lo, hi = int(ref.index[0]), int(ref.index[-1]) + 60
    got = _get(server, f"/api/meters/{sid}/windows?utility={u}&window=60&from={lo}&to={hi}")
    cells = pd.DataFrame(got["windows"]).set_index("window_start")
    assert cells.index.tolist() == ref.index.tolist()
    assert cells["count"].tolist() == ref["count"].tolist()
    np.testing.assert_allclose(cells[["sum", "min", "max"]], ref[["sum", "min", "max"]],
                               rtol=1e-12)


async def test_state_windows_add_every_partitions_share(fed, redis_cluster, monkeypatch):
    """Per state and window: sum and count added over the partitions' shares, min and max
    combined, in one pipeline per node holding a share; also after the slot map went stale
    (a failover's MOVED: read again through redis-py's cluster pipeline)."""
    df, config = fed["df"], fed["config"]
    url = acl.stack_user_url(config)
    assert url, "stack up did not keep a dashboard user for the cluster"
    src = serve.redis_reader(config, url)
    sent: list[int] = []
    one_node = cluster_reader._on_node

    async def counted(node, payload: bytes, replies: int) -> list:
        sent.append(int(node.port))
        return await one_node(node, payload, replies)

    monkeypatch.setattr(cluster_reader, "_on_node", counted)
    try:
        await src.refresh()
        for u in COUNTS:
            sent.clear()
            await src.states(u, 3600, [T0 // 3600 * 3600])
            shares = [config_layout(config).state(u, 3600, p) for p in range(COUNTS[u])]
            assert sorted(sent) == sorted({redis_cluster.primary_of(k) for k in shares})
            sid = df["sid"].iloc[0]
            sent.clear()
            await src.meter(sid, [(u, 60, [T0]), (u, 3600, [T0])])
            p = int(df.loc[(df["sid"] == sid) & (df["utility"] == u), "partition"].iloc[0])
            keys = [registry.meter_key(sid, fed["prefix"]),
                    config_layout(config).meter(sid, u, 60, p)]
            assert sorted(sent) == sorted({redis_cluster.primary_of(k) for k in keys})
        for u in COUNTS:
            mine = df[df["utility"] == u]
            ref = _windows(mine, ["state"], 60)
            starts = sorted(ref["window_start"].unique().tolist())
            got = await src.states(u, 60, starts + [starts[-1] + 60])
            for s in STATES:
                row = ALL_STATES.index(s)
                want = ref[ref["state"] == s].set_index("window_start").reindex(starts)
                v = got[row]
                assert v["count"].tolist() == [*want["count"].fillna(0).astype(int), 0]
                np.testing.assert_allclose(v["sum"][:-1], want["sum"], rtol=1e-12)
                np.testing.assert_array_equal(v["min"][:-1], want["min"])
                np.testing.assert_array_equal(v["max"][:-1], want["max"])
        # the slot map made stale: every slot pointed at one wrong node
        before = await src.states("gas", 3600, [T0 // 3600 * 3600])
        src._finals.clear()
        cache = src.client.nodes_manager.slots_cache
        wrong = src.client.get_primaries()[0]
        for slot in cache:
            cache[slot] = [wrong]
        again = await src.states("gas", 3600, [T0 // 3600 * 3600])
        assert src.rerouted >= 1
        assert again["count"].tolist() == before["count"].tolist()
        assert int(again["count"].sum()) == int((df["utility"] == "gas").sum())
    finally:
        await src.close()
    # a namespace followed through the pointer, as a rebuild's switch moves it
    pointer = f"auth:pointer{config.group}"
    admin = sync_client(redis_cluster.url, cluster=True)
    admin.set(pointer, config.namespace)
    follower = serve.redis_reader(config.with_(namespace=None, pointer=pointer), url)
    try:
        await follower.refresh()
        clock = await follower.clock()
        assert clock.namespace == config.namespace
        assert clock.watermark["gas"] == df[df["utility"] == "gas"].groupby(
            "partition")["end_ts"].max().min()
        admin.set(pointer, f"{config.namespace}-next")     # the switch to an empty one
        await follower.refresh()
        assert (await follower.clock()).newest == {} and follower.namespace.endswith("-next")
    finally:
        await follower.close()
        admin.delete(pointer)
        admin.close()
    monkeypatch.setenv("AUTH_DASHBOARD_REDIS_REPLICA_URL", redis_cluster.url)
    with pytest.raises(UserError, match="single Redis") as err:   # the cluster has replicas
        serve.redis_reader(config, url)
    assert "\n" not in str(err.value)


def config_layout(config: Config) -> Layout:
    return Layout(config.namespace, config.group, cluster=True)


def test_read_only_user_is_on_every_node_and_cannot_write(redis_cluster, unique, monkeypatch,
                                                          tmp_path):
    """ACL users are not replicated: `stack up` and `dashboard create-redis-user` set the
    user on every node (primaries and replicas); writes are refused on each, and the
    cluster client may read with it (it finds the slots with CLUSTER SLOTS)."""
    stack = Config.load(env={**redis_cluster.env, "AUTH_STACK_DIR": str(redis_cluster.home)})
    kept = acl.stack_user_url(stack)
    assert kept, "stack up kept no dashboard user for the cluster"
    for var, value in {**redis_cluster.env, "AUTH_STACK_DIR": str(redis_cluster.home)}.items():
        monkeypatch.setenv(var, value)
    monkeypatch.setenv("AUTH_DASHBOARD_REDIS_PASSWORD", f"pw-{unique}")
    assert cli(["dashboard", "create-redis-user", "--user", f"dash{unique}",
                "--url-file", str(tmp_path / "dash.url")]) == 0
    made = (tmp_path / "dash.url").read_text().strip()
    try:
        for url in (kept, made):
            user = urlsplit(url)
            for port in redis_cluster.ports():
                node = redis.Redis(port=port, username=unquote(user.username),
                                   password=unquote(user.password))
                assert node.cluster("slots")
                with pytest.raises(redis.exceptions.NoPermissionError):
                    node.hset(f"auth:x:{port}", "f", "1")
                with pytest.raises(redis.exceptions.NoPermissionError):
                    node.execute_command("CONFIG", "SET", "maxmemory", "1")
            client = sync_client(url, cluster=True)
            client.get(stack.pointer)      # reads: the slot map was found with this user
            client.zcard(registry.index_key())
            with pytest.raises(redis.exceptions.NoPermissionError):
                client.set("auth:written-by-the-dashboard", "1")
            client.close()
    finally:
        for port in redis_cluster.ports():
            redis.Redis(port=port).acl_deluser(f"dash{unique}")
