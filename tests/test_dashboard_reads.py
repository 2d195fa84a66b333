"""The dashboard's read path against real redis-servers: the configured namespace pointer,
hedged replica/primary reads, the final-window cache, stale-while-revalidate. Private
servers, so stalls can be staged."""

from __future__ import annotations

import asyncio
import gc
import shutil
import subprocess
import time

import numpy as np
import pytest
import redis

from auth_kappa.config import Config
from auth_kappa.errors import UserError
from auth_kappa.state import codec
from auth_kappa.topology.schema import STATES
from dashboards import acl, registry, serve
from dashboards.cache import TTLCache
from dashboards.redis_reader import RedisReader
from tests.support.browser import free_port

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="needs Debian's redis-server (auth-kappa stack up)")
SID = "1b4e28ba-2fa1-41d2-883f-0016d3cca427"


def _server(tmp_path, name: str, replica_of: int | None = None) -> tuple[subprocess.Popen, int]:
    port = free_port()
    cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
           "--appendonly", "no", "--dir", str(tmp_path), "--enable-debug-command", "local",
           "--repl-diskless-sync-delay", "0",
           "--dbfilename", f"{name}.rdb"]
    if replica_of:
        cmd += ["--replicaof", "127.0.0.1", str(replica_of)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 20
    while True:
        try:
            if not replica_of or client.info("replication")["master_link_status"] == "up":
                return proc, port
        except redis.ConnectionError:
            pass
        assert time.monotonic() < deadline, f"redis-server {name} did not start"
        time.sleep(0.1)


@pytest.fixture
def pair(tmp_path):
    primary, pport = _server(tmp_path, "primary")
    replica, rport = _server(tmp_path, "replica", pport)
    yield pport, rport
    for proc in (replica, primary):
        proc.terminate()
        proc.wait(10)


def _fill(port: int) -> None:
    """One meter: 60 gas minutes and its registry entry; per-state minute windows."""
    r = redis.Redis(port=port)
    v = np.zeros(1, codec.value_dtype(1))
    v["sum"], v["count"], v["min"], v["max"] = 1.5, 12, 0.1, 0.2
    r.hset(f"auth:v1:m:{{{SID}}}:gas:60", mapping={str(600 + 60 * i): v.tobytes()
                                                   for i in range(60)})
    r.hset(registry.meter_key(SID), mapping={"user_name": "Ada Lovelace", "type": "household",
                                             "state": "CA"})
    w = np.zeros(1, codec.VALUE)
    w["sum"], w["count"] = 2.0, 3
    r.hset("auth:v1:s:gas:60", mapping={f"{s}:{600 + 60 * i}": w.tobytes()
                                        for s in STATES for i in range(10)})
    r.hset("auth:v1:highs:g", mapping={"gas:0": 600 + 60 * 60})
    r.wait(1, 2000)   # the replica has it too


@pytest.fixture
def solo(tmp_path):
    proc, port = _server(tmp_path, "solo")
    yield port
    proc.terminate()
    proc.wait(10)


async def test_dashboard_follows_the_configured_pointer(solo, tmp_path, monkeypatch):
    """AUTH_POINTER names the key a rebuild switches; the dashboard must follow that key, not
    the default auth:namespace (which here names a namespace that is not live)."""
    for var in ("AUTH_DASHBOARD_REDIS_URL", "AUTH_DASHBOARD_REDIS_REPLICA_URL",
                "AUTH_REGISTRY_PREFIX"):
        monkeypatch.delenv(var, raising=False)
    r = redis.Redis(port=solo)
    r.set("auth:namespace", "stale")
    r.set("auth:tenant:pointer", "v7")
    for ns, high in (("stale", 111), ("v7", 700), ("v8", 800)):
        r.hset(f"auth:{ns}:highs:g", mapping={"gas:0": high})
    config = Config.load(env={}, redis_url=f"redis://127.0.0.1:{solo}/0", group="g",
                         pointer="auth:tenant:pointer", stack_dir=str(tmp_path / "stack"))
    src = serve.redis_reader(config, allow_writable=True)   # a private Redis, no ACL user
    try:
        await src.refresh()
        assert src.namespace == "v7" and (await src.clock()).newest == {"gas": 700}
        r.set("auth:tenant:pointer", "v8")        # a rebuild's switch
        await src.refresh()
        assert src.namespace == "v8" and (await src.clock()).newest == {"gas": 800}
    finally:
        await src.close()
    # the read-only user may read auth:* only: a pointer elsewhere fails at start, in one line
    url = acl.create_user(config.redis_url, "dash-pointer", "pointer-test-password")
    with pytest.raises(UserError, match="AUTH_POINTER") as err:
        serve.redis_reader(config.with_(pointer="tenant:pointer"), url)
    assert "\n" not in str(err.value) and "pointer-test-password" not in str(err.value)


async def test_hedged_read_answers_from_the_primary_while_the_replica_stalls(pair):
    pport, rport = pair
    _fill(pport)
    src = RedisReader(f"redis://127.0.0.1:{pport}/0", (60,), "g", "v1",
                      pointer="auth:namespace", replica_url=f"redis://127.0.0.1:{rport}/0",
                      hedge_after=0.01)
    try:
        await src.refresh()
        starts = [600 + 60 * i for i in range(60)]
        info, (vals,) = await src.meter(SID, [("gas", 60, starts)])
        assert info["user_name"] == "Ada Lovelace" and src.hedged == 0
        assert vals["count"].tolist() == [12] * 60
        # the replica busy for 1.5 s (as with a large checkpoint transaction)
        stall = asyncio.create_task(asyncio.to_thread(
            redis.Redis(port=rport).execute_command, "DEBUG", "SLEEP", "1.5"))
        await asyncio.sleep(0.2)
        t0 = time.perf_counter()
        info, (vals,) = await src.meter(SID, [("gas", 60, starts)])
        took = time.perf_counter() - t0
        assert took < 0.5 and src.hedged == 1, took
        assert vals["sum"].tolist() == [1.5] * 60
        await stall
        await asyncio.sleep(0.1)   # the dropped replica request finished and went back clean
        info, (vals,) = await src.meter(SID, [("gas", 60, starts)])
        assert info["state"] == "CA" and src.hedged == 1
    finally:
        await src.close()


async def test_final_state_windows_are_cached_open_ones_reread(pair):
    pport, _ = pair
    _fill(pport)
    src = RedisReader(f"redis://127.0.0.1:{pport}/0", (60,), "g", "v1",
                      pointer="auth:namespace", grace=30)
    try:
        await src.refresh()   # watermark 4200: windows 600..1140 are final
        starts = [600 + 60 * i for i in range(10)] + [4140]
        first = await src.states("gas", 60, starts)
        assert first["count"][:, :10].sum() == 3 * 10 * len(STATES)
        # a change to a final window stays hidden (cached); the open window is re-read
        w = np.zeros(1, codec.VALUE)
        w["sum"], w["count"] = 9.0, 9
        redis.Redis(port=pport).hset("auth:v1:s:gas:60",
                                     mapping={"CA:600": w.tobytes(), "CA:4140": w.tobytes()})
        again = await src.states("gas", 60, starts)
        ca = STATES.index("CA")
        assert again["count"][ca, 0] == 3 and again["count"][ca, -1] == 9
    finally:
        await src.close()


async def test_stale_while_revalidate_and_single_flight():
    cache, calls = TTLCache(), []

    async def make() -> int:
        calls.append(1)
        await asyncio.sleep(0.2)
        return len(calls)

    assert await asyncio.gather(*(cache.get("k", 0.1, make, 1.0) for _ in range(5))) == [1] * 5
    await asyncio.sleep(0.15)
    t0 = time.perf_counter()
    assert await cache.get("k", 0.1, make, 1.0) == 1        # expired: old value at once
    assert time.perf_counter() - t0 < 0.15   # not the 0.2 s refresh
    await asyncio.sleep(0.25)
    assert await cache.get("k", 0.1, make, 1.0) == 2        # the background refresh landed
    await asyncio.sleep(1.5)
    assert await cache.get("k", 0.1, make, 1.0) == 3        # too old to serve: wait for it


async def test_a_loaded_answer_leaves_nothing_for_the_garbage_collector():
    """Thousands of answers live for seconds: held as Futures, they were what the GC's
    older generations scanned with the serving loop stopped (dashboards/cache.py)."""
    cache = TTLCache()

    async def make() -> bytes:
        await asyncio.sleep(0)
        return b'{"meter": 1}'

    for i in range(3):
        assert await cache.get(("meter", str(i), "day", 7), 0.5, make, 5.0) == b'{"meter": 1}'
    gc.collect()
    assert not any(gc.is_tracked(entry) for entry in cache._items.values())
