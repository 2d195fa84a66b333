"""`stack balance-tags` (issue 11, scale-out): every primary of a Redis Cluster serves
floor/ceil(tags / primaries) of the partition tags {<utility>:<p>}, by Redis's own slot
migration, keys included. Counted independently from each primary's CLUSTER SLOTS."""

from __future__ import annotations

import itertools
import random
import shutil
import subprocess
import time
from collections import Counter

import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

from auth_kappa.cli.main import main
from auth_kappa.config import Config
from auth_kappa.stack.tag_balance import balance
from auth_kappa.state.layout import Layout
from tests.chaos.services import free_ports

UTILITIES = ("electricity", "gas", "water")


def slot_owners(cluster) -> dict[int, int]:
    """Slot -> port of its primary, from every primary's own slot map."""
    owner: dict[int, int] = {}
    for port in cluster.ports():
        node = redis.Redis(port=port)
        if node.info("replication")["role"] != "master":
            continue
        for lo, hi, primary, *_ in node.cluster("slots"):
            if int(primary[1]) == port:
                owner.update({s: port for s in range(lo, hi + 1)})
    return owner


def tags_per_primary(cluster, counts: dict[str, int]) -> Counter:
    """Tags served by each primary (port)."""
    owner = slot_owners(cluster)
    served = Counter({p: 0 for p in set(owner.values())})
    for u, n in counts.items():
        for p in range(n):
            served[owner[key_slot(f"{{{u}:{p}}}".encode())]] += 1
    return served


def fewest_moves(served: Counter) -> int:
    """Brute force: over every choice of which primaries end at the ceiling, the fewest
    tags leaving a primary (one tag per slot)."""
    loads, total = list(served.values()), sum(served.values())
    low, extra = divmod(total, len(loads))
    return min(sum(max(0, load - low - (i in ceil)) for i, load in enumerate(loads))
               for ceil in itertools.combinations(range(len(loads)), extra))


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """`auth-kappa stack balance-tags ARGS` in this process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = main(["stack", "balance-tags", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_stack_up_balanced_the_new_clusters_tags(redis_cluster) -> None:
    n = Config.load().partitions   # what the fixture's `stack up` was given
    served = tags_per_primary(redis_cluster, dict.fromkeys(UTILITIES, n))
    low = 3 * n // len(served)
    assert set(served.values()) <= {low, low + (3 * n % len(served) > 0)}, served


def test_balance_moves_slots_with_their_keys(redis_cluster, unique, capsys) -> None:
    counts = dict.fromkeys(UTILITIES, 8)   # 24 tags: not what stack up balanced
    layout = Layout(f"tb{unique}", "g", cluster=True)
    client = RedisCluster.from_url(redis_cluster.url)
    rng = random.Random(11)
    written: dict[str, dict[bytes, bytes]] = {}
    pipe = client.pipeline(transaction=False)
    for u, n in counts.items():
        for p in range(n):
            for key in [layout.meter(f"m{i}", u, 900, p) for i in range(20)] + [
                    layout.state(u, 900, p), layout.progress("offsets", f"{u}:{p}")]:
                value = {f"f{j}".encode(): str(rng.random()).encode() for j in range(3)}
                pipe.hset(key, mapping=value)
                written[key] = value
    pipe.execute()
    try:
        before = tags_per_primary(redis_cluster, counts)
        assert max(before.values()) - min(before.values()) > 1, before   # work to do

        code, out, err = cli(capsys, "--redis", redis_cluster.url, "--partitions", "8",
                             "--dry-run")
        assert code == 0 and "(planned)" in out, out + err
        assert tags_per_primary(redis_cluster, counts) == before   # a plan moves nothing

        code, out, err = cli(capsys, "--redis", redis_cluster.url, "--partitions", "8")
        assert code == 0, out + err
        moved = [line for line in out.splitlines() if "keys migrated" in line]
        assert len(moved) == fewest_moves(before), out

        after = tags_per_primary(redis_cluster, counts)
        assert sum(after.values()) == 24 and set(after.values()) == {8}, after
        # every key on the primary that owns its slot now (asked directly), with its value
        owner = slot_owners(redis_cluster)
        pipes = {port: redis.Redis(port=port).pipeline(transaction=False) for port in after}
        keys = list(written)
        for key in keys:
            pipes[owner[key_slot(key.encode())]].hgetall(key)
        found = {port: iter(pipe.execute()) for port, pipe in pipes.items()}
        for key in keys:
            assert next(found[owner[key_slot(key.encode())]]) == written[key], key
        assert RedisCluster.from_url(redis_cluster.url).hgetall(keys[-1]) == written[keys[-1]]

        again = balance(redis_cluster.url, counts)
        assert again.moves == [] and "nothing moved" in again.summary()
        assert tags_per_primary(redis_cluster, counts) == after
    finally:
        client.delete(*written)


def test_a_single_redis_gets_one_line(tmp_path, capsys) -> None:
    port = free_ports(1, start=26500)
    server = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port",
                               str(port), "--save", "", "--appendonly", "no",
                               "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    try:
        node = redis.Redis(port=port)
        for _ in range(100):
            try:
                node.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        code, out, err = cli(capsys, "--redis", f"redis://127.0.0.1:{port}/0")
        assert code == 2 and err.count("\n") == 1 and "not a cluster" in err, err
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_checkpoints_during_slot_migration_stay_exact(redis_cluster, unique) -> None:
    """A live runtime keeps writing while {gas:0} and {gas:1} move between primaries back
    and forth (Redis's own migration): a checkpoint that meets a moving key is refused
    (ASK, TRYAGAIN, EXECABORT) and the runtime resumes from Redis; nothing is lost. The
    script declares every key it writes, so it cannot recreate a moved key on the old
    node. Last in this file: the slots go back to their owners at the end."""
    import threading
    import uuid

    from auth_kappa.runtime.live import LiveRuntime
    from auth_kappa.stack.tag_balance import Cluster, Move
    from auth_kappa.state.redis_store import RedisWindowStore
    from auth_kappa.topology.decode import Message
    from auth_kappa.topology.partitioner import partitions_of
    from auth_kappa.topology.processor import Topology

    config = Config.load(env={**redis_cluster.env, "AUTH_NAMESPACE": f"mig{unique}",
                              "AUTH_GROUP": f"mig{unique}"})
    store = RedisWindowStore.from_config(config)
    sids = [str(uuid.UUID(int=5000 + i, version=4)) for i in range(50)]
    parts = partitions_of([s.encode() for s in sids], 2).tolist()
    msgs: dict[int, list[Message]] = {0: [], 1: []}
    t0, total = 1_772_409_600, 0
    for k in range(240):
        for sid, p in zip(sids, parts, strict=True):
            line = f"{sid},A,household,{t0 + 5 * k},CA,0.5,{t0 + 5 * k + 5}".encode()
            msgs[p].append(Message(line, p, len(msgs[p])))
            total += 1
    cluster = Cluster(redis_cluster.url)
    slots = [key_slot(tag.encode()) for tag in ("{gas:0}", "{gas:1}")]
    home = cluster.owners(set(slots))
    ids = [p.node_id for p in cluster.primaries]
    stop, moves = threading.Event(), [0]

    def mover() -> None:
        while not stop.is_set():
            for slot in slots:
                src = cluster.owners({slot})[slot]
                cluster.migrate(Move(slot, (), src, next(i for i in ids if i != src)))
                moves[0] += 1
            time.sleep(0.05)

    def runtime() -> tuple[LiveRuntime, dict]:
        rt = LiveRuntime(Topology(config.window_specs(), grace=30), store,
                         emit=lambda *a: None, commit_interval=3600)
        rt.place({"gas": 2})
        return rt, rt.assign([("gas", 0), ("gas", 1)])

    thread = threading.Thread(target=mover)
    thread.start()
    refused = 0
    try:
        rt, _ = runtime()
        pos = {0: 0, 1: 0}
        while any(pos[p] < len(msgs[p]) for p in msgs):
            try:
                for p in msgs:
                    rt.process("gas", msgs[p][pos[p]:pos[p] + 100])
                    pos[p] = min(pos[p] + 100, len(msgs[p]))
                rt.checkpoint()
            except redis.RedisError:   # what a worker does: resume from Redis
                refused += 1
                time.sleep(0.02)
                rt, seek = runtime()
                pos = {p: seek.get(("gas", p), 0) for p in msgs}
    finally:
        stop.set()
        thread.join()
        for slot in slots:   # home again, so the cluster stays as stack up left it
            now = cluster.owners({slot})[slot]
            if now != home[slot]:
                cluster.migrate(Move(slot, (), now, home[slot]))
    try:
        assert moves[0] >= 10 and refused >= 1, (moves, refused)
        got = store.read_windows("state", "gas", 60)
        assert int(got["count"].sum()) == total
        assert store.offsets() == {f"gas:{p}": len(m) for p, m in msgs.items()}
    finally:
        store.drop_namespace()
