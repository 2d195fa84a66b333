"""Spread a Redis Cluster's partition tags evenly over its primaries, by moving whole slots.

On a cluster every key of a source partition's checkpoint carries the hash tag
{<utility>:<p>} (state/layout.py), so a primary's share of the work is its share of the
tags. `redis-cli --cluster create` splits the 16384 slots in thirds, which knows nothing of
the tags: 12 of them land 6/3/3 on 3 primaries and the busiest does half the work.

This moves as few slots as it can so every primary serves floor or ceil(tags / primaries)
of them, with Redis Cluster's own slot migration (SETSLOT IMPORTING/MIGRATING, MIGRATE of
every key in the slot, SETSLOT NODE on every primary): only slot ownership changes, the
keys move with their slot, and clients follow the MOVED/ASK redirections as they would
after `redis-cli --cluster reshard`. Two tags in one slot move together (a slot is the unit).
Workers may run meanwhile: a checkpoint meeting a slot in migration is refused whole
(ASK/TRYAGAIN abort its transaction; its script declares every key) and resumed from Redis.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import redis
from redis.crc import key_slot

from auth_kappa.errors import UserError
from auth_kappa.state.clients import seeds
from auth_kappa.state.layout import Layout

BATCH = 100          # keys per MIGRATE
MIGRATE_MS = 10_000  # MIGRATE's own timeout per batch


@dataclass(frozen=True)
class Primary:
    node_id: str
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Move:
    slot: int
    tags: tuple[str, ...]
    source: str   # node ids
    target: str


@dataclass
class Report:
    primaries: list[Primary]
    before: dict[str, int]   # node id -> tags served
    after: dict[str, int]
    moves: list[Move] = field(default_factory=list)
    keys_moved: dict[int, int] = field(default_factory=dict)   # slot -> keys migrated
    dry_run: bool = False

    def spread(self, counts: Mapping[str, int]) -> str:
        names = {p.node_id: p.address for p in self.primaries}
        return " ".join(f"{names[n]}={c}" for n, c in counts.items())

    def summary(self) -> str:
        """Tags per primary before -> after, and how many slots moved."""
        if not self.moves:
            return f"already even, nothing moved ({self.spread(self.before)} tags)"
        verb = "to move" if self.dry_run else "moved"
        return (f"{self.spread(self.before)} -> {self.spread(self.after)} tags "
                f"({len(self.moves)} slot{'s' if len(self.moves) > 1 else ''} {verb})")

    def lines(self) -> list[str]:
        """What it did, for a person: one line per slot moved, then the summary."""
        names = {p.node_id: p.address for p in self.primaries}
        out = [f"slot {m.slot} ({', '.join(m.tags)}): {names[m.source]} -> {names[m.target]}"
               + (f", {self.keys_moved[m.slot]} keys migrated" if m.slot in self.keys_moved
                  else " (planned)") for m in self.moves]
        return [*out, self.summary()]


def tag_slots(counts: Mapping[str, int]) -> dict[str, int]:
    """The slot of each partition tag {<utility>:<p>}, p < that utility's partitions."""
    tags = [Layout.tag(u, p) for u, n in counts.items() for p in range(int(n))]
    return {t: key_slot(t.encode()) for t in tags}


def load(tags: Mapping[str, int], owner: Mapping[int, str], nodes: list[str]) -> dict[str, int]:
    """Tags served by each primary (node id), given who owns each slot."""
    served = dict.fromkeys(nodes, 0)
    for slot in tags.values():
        served[owner[slot]] += 1
    return served


def plan(tags: Mapping[str, int], owner: Mapping[int, str], nodes: list[str],
         keys_in: Callable[[int], int] = lambda slot: 0) -> list[Move]:
    """Slots to move, fewest first: each move takes a slot from the busiest primary to the
    idlest while that narrows the gap, so with one tag per slot every primary ends with
    floor or ceil(tags / primaries) and no slot moves that need not. Among equal choices
    the slot holding fewest keys (`keys_in`) moves."""
    by_slot: dict[int, list[str]] = {}
    for tag, slot in sorted(tags.items()):
        by_slot.setdefault(slot, []).append(tag)
    owner = {s: owner[s] for s in by_slot}
    served = load(tags, owner, nodes)
    moves: list[Move] = []
    while True:
        busiest = max(nodes, key=lambda n: (served[n], n))
        idlest = min(nodes, key=lambda n: (served[n], n))
        gap = served[busiest] - served[idlest]
        fits = [s for s, t in by_slot.items() if owner[s] == busiest and len(t) < gap]
        if not fits:
            return moves
        slot = max(fits, key=lambda s: (len(by_slot[s]), -keys_in(s), -s))
        moves.append(Move(slot, tuple(by_slot[slot]), busiest, idlest))
        owner[slot] = idlest
        served[busiest] -= len(by_slot[slot])
        served[idlest] += len(by_slot[slot])


class Cluster:
    """Admin connections to a cluster's primaries (plain clients: slot commands go to one
    node each, never through the cluster client's routing)."""

    def __init__(self, url: str) -> None:
        first, nodes = seeds(url)
        self.options = {k: v for k, v in redis.Redis.from_url(first).connection_pool
                        .connection_kwargs.items()
                        if k in ("username", "password", "socket_timeout", "ssl")}
        self.options.setdefault("socket_timeout", 15)
        self.seed = self._reachable(nodes)
        self.primaries = self._primaries()

    def _reachable(self, nodes: list[tuple[str, int]]) -> redis.Redis:
        for host, port in nodes:
            client = redis.Redis(host=host, port=port, **self.options)
            try:
                enabled = client.info("cluster").get("cluster_enabled")
            except redis.RedisError:
                continue
            if not enabled:
                raise UserError(f"Redis at {host}:{port} is not a cluster (cluster_enabled:0): "
                                "there are no slots to move; set AUTH_REDIS_URL to a cluster "
                                "node and AUTH_REDIS_CLUSTER=1")
            return client
        raise UserError(f"no node of the cluster answers at {', '.join(f'{h}:{p}' for h, p in nodes)}")

    def _primaries(self) -> list[Primary]:
        found = []
        for address, node in self.seed.cluster("nodes").items():
            flags = node["flags"]
            if "master" not in flags or "fail" in flags or "noaddr" in flags:
                continue
            if node.get("migrations"):
                raise UserError(f"slots of {address} are being migrated already "
                                f"({node['migrations']}); finish or fix that first "
                                "(redis-cli --cluster fix)")
            host, _, port = address.partition("@")[0].rpartition(":")
            found.append(Primary(node["node_id"], host, int(port)))
        return sorted(found, key=lambda p: (p.host, p.port))

    def node(self, node_id: str) -> redis.Redis:
        p = next(p for p in self.primaries if p.node_id == node_id)
        return redis.Redis(host=p.host, port=p.port, **self.options)

    def owners(self, slots: set[int]) -> dict[int, str]:
        """Owner node id of each slot, from the seed's slot map."""
        found: dict[int, str] = {}
        for lo, hi, primary, *_ in self.seed.cluster("slots"):
            node_id = primary[2].decode() if isinstance(primary[2], bytes) else primary[2]
            found.update({s: node_id for s in slots if lo <= s <= hi})
        missing = slots - found.keys()
        if missing:
            raise UserError(f"slots {sorted(missing)[:5]} are not served by any primary "
                            "(cluster_state not ok?)")
        return found

    def keys_in(self, slot: int, owner: str) -> int:
        return int(self.node(owner).execute_command("CLUSTER COUNTKEYSINSLOT", slot))

    def migrate(self, move: Move) -> int:
        """Redis Cluster's slot migration of one slot, keys included; returns keys moved."""
        source, target = self.node(move.source), self.node(move.target)
        dest = next(p for p in self.primaries if p.node_id == move.target)
        target.execute_command("CLUSTER SETSLOT", move.slot, "IMPORTING", move.source)
        source.execute_command("CLUSTER SETSLOT", move.slot, "MIGRATING", move.target)
        auth = self._migrate_auth()
        moved = 0
        while True:
            keys = source.execute_command("CLUSTER GETKEYSINSLOT", move.slot, BATCH)
            if not keys:
                break
            source.execute_command("MIGRATE", dest.host, dest.port, "", 0, MIGRATE_MS,
                                   *auth, "KEYS", *keys)
            moved += len(keys)
        # the new owner first, then the old one, then everyone else (Redis's documented order)
        others = [p.node_id for p in self.primaries if p.node_id not in (move.target, move.source)]
        for node_id in (move.target, move.source, *others):
            self.node(node_id).execute_command("CLUSTER SETSLOT", move.slot, "NODE", move.target)
        return moved

    def _migrate_auth(self) -> list[str]:
        password = self.options.get("password")
        if not password:
            return []
        user = self.options.get("username")
        return ["AUTH2", user, password] if user else ["AUTH", password]


def balance(url: str | Cluster, counts: Mapping[str, int], dry_run: bool = False) -> Report:
    """Move slots so each primary of the cluster at `url` serves an even share of the tags
    of `counts` (utility -> partitions); `dry_run` only plans."""
    if not counts or not any(int(n) > 0 for n in counts.values()):
        raise UserError("no partitions to balance (give --partitions N)")
    cluster = url if isinstance(url, Cluster) else Cluster(url)
    tags = tag_slots(counts)
    owner = cluster.owners(set(tags.values()))
    nodes = [p.node_id for p in cluster.primaries]
    moves = plan(tags, owner, nodes, keys_in=lambda s: cluster.keys_in(s, owner[s]))
    before = load(tags, owner, nodes)
    after = load(tags, {**owner, **{m.slot: m.target for m in moves}}, nodes)
    report = Report(cluster.primaries, before, after, moves, dry_run=dry_run)
    if not dry_run:
        for move in moves:
            report.keys_moved[move.slot] = cluster.migrate(move)
    return report
