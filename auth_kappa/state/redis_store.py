"""Window state in Redis: the live path's state store, checkpointed with the source offsets.

Keys: auth_kappa/state/layout.py. A checkpoint call is one MULTI/EXEC: meter windows
(absolute), state deltas, offsets and highs together, so after a crash the state and the
offsets it came from are always the same cut (the live runtime makes one call per
partition: runtime/commits.py). On a Redis Cluster that call's keys share their
partition's slot, and it goes to the primary serving it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING

import hiredis
import numpy as np
import pandas as pd
import redis

from auth_kappa.insights.bills import expired, sketch_dates
from auth_kappa.state import codec
from auth_kappa.state.clients import Client, is_cluster, node_of, primaries, sync_client
from auth_kappa.state.layout import (
    POINTER,
    Layout,
    day_records,
    followed,
    merged,
    sketch_shares,
    watermarks_and_newest,
)
from auth_kappa.state.resp import (
    RespConnection,
    command,
    concat,
    decimal,
    pack,
    raise_if_error,
    widths,
)
from auth_kappa.topology.keys import first_of_each, uuid_bytes, uuid_keys, uuid_text
from auth_kappa.topology.partitioner import partitions_of
from auth_kappa.topology.processor import Slot
from auth_kappa.topology.schema import STATES
from auth_kappa.topology.window_table import UNKNOWN, Loader, Rows
from auth_kappa.topology.windows import WindowSpec

if TYPE_CHECKING:
    from auth_kappa.config import Config
    from auth_kappa.insights.stage import Changes as InsightChanges

TRIM_CHUNK = 500        # new windows per trim call: ~1 ms of Redis, between transactions
NOTICES_KEPT = 64       # change notices a stream keeps (~1 MB each flat out): a reader
                        # further behind reads Redis again (dashboards/changes.py)
TTL_SLACK = 86400       # idle keys outlive their retention by a day, then Redis drops them
RENEW_EVERY = 3600      # s of event time between two renewals of a reporting meter's TTL
log = logging.getLogger("auth_kappa.store")
ALL_STATES = "".join(STATES)   # 2 characters each: the state script deletes a window whole


def _script(name: str) -> str:
    return resources.files("auth_kappa.state.lua").joinpath(name).read_text()


@dataclass
class RedisWindowStore:
    client: Client
    namespace: str
    windows: tuple[WindowSpec, ...]
    group: str = "auth-kappa"

    def __post_init__(self) -> None:
        self.cluster = is_cluster(self.client)
        self.keys = Layout(self.namespace, self.group, self.cluster)
        self._trim_lua = _script("trim_meters.lua")
        self._drop_firsts_lua = _script("drop_firsts.lua")
        self._commit_lua = _script("commit.lua")
        self._notice_lua = _script("notice.lua")
        self._lock = threading.Lock()   # one checkpoint at a time
        self._sockets: dict[str, RespConnection] = {}   # node -> checkpoint socket
        self._stale_routes = False
        self._counts: dict[str, int] = {}   # utility -> partitions (a cluster's placement)
        # offsets Redis acknowledged ("gas:3" -> next offset), recorded as EXEC answers:
        # a later reload below them means Redis lost acknowledged writes (LiveRuntime.assign)
        self.acknowledged: dict[str, int] = {}
        self._indexed: dict[tuple[str, int], set[bytes]] = {}   # in meters:... already
        # partitions whose _indexed set started from Redis's (indexed_meters): a meter
        # not in it has no stored windows there; _joining: this checkpoint's additions
        self._loaded: set[tuple[str, int]] = set()
        self._joining: dict[tuple[str, int], set[bytes]] = {}
        self._renewed: dict[str, float] = {}   # meter set key -> when its TTL was renewed
        self.index_refresh = 3600.0
        self._specs = {s.size: s for s in self.windows}
        self._finest = min(self._specs)

    @classmethod
    def connect(cls, url: str, namespace: str | None, windows: tuple[WindowSpec, ...],
                group: str = "auth-kappa", pointer: str = POINTER,
                cluster: bool = False) -> RedisWindowStore:
        # a checkpoint transaction can run for seconds under load; redis-py's default is 5 s
        client = sync_client(url, cluster, socket_timeout=120, socket_connect_timeout=5)
        ns = namespace or followed(client.get(pointer))
        return cls(client, ns, windows, group)

    @classmethod
    def from_config(cls, config: Config) -> RedisWindowStore:
        """The store every part opens: AUTH_REDIS_URL (a cluster's node with
        AUTH_REDIS_CLUSTER), the namespace set or followed, the group."""
        return cls.connect(config.redis_url, config.namespace, config.window_specs(),
                           group=config.group, pointer=config.pointer,
                           cluster=config.redis_cluster)

    # ---- keys
    @property
    def prefix(self) -> str:
        return self.keys.prefix

    def use_namespace(self, namespace: str) -> None:
        """Point the store at another namespace (a rebuild's switch)."""
        self.namespace = namespace
        self.keys = self.keys.moved(namespace)
        self._counts = {}

    def meter_key(self, service_id: str, utility: str, size: int,
                  partition: int | None = None) -> str:
        if self.cluster and partition is None:
            partition = int(self.partition_of(utility, [service_id])[0])
        return self.keys.meter(service_id, utility, size, partition)

    def state_key(self, utility: str, size: int, partition: int | None = None) -> str:
        return self.keys.state(utility, size, partition)

    # ---- placement (a cluster's keys follow the meter's source partition)
    def set_partitions(self, counts: Mapping[str, int]) -> None:
        """Each utility's topic partition count, as the workers consume it: where readers
        of a cluster find a meter's keys and a state window's shares."""
        if counts:
            self.client.hset(self.keys.partitions, mapping={u: int(n) for u, n in counts.items()})
            self._counts.update({u: int(n) for u, n in counts.items()})

    def partition_counts(self, refresh: bool = False) -> dict[str, int]:
        if refresh or not self._counts:
            raw = self.client.hgetall(self.keys.partitions)
            self._counts = {k.decode(): int(v) for k, v in raw.items()}
        return dict(self._counts)

    def partition_of(self, utility: str, service_ids: list[str] | np.ndarray) -> np.ndarray:
        """The partition Kafka's key partitioner gives each meter (int32)."""
        n = self.partition_counts().get(utility) or self.partition_counts(True).get(utility)
        if not n:
            raise LookupError(f"no partition count stored for {utility} in {self.namespace} "
                              "(no worker has consumed it yet)")
        keys = [s if isinstance(s, bytes) else str(s).encode() for s in service_ids]
        return partitions_of(keys, n)

    def words(self, size: int) -> int:
        return -(-size // 64) if size == self._finest else 0

    # ---- writes
    def claim(self, partitions: list[str]) -> dict[str, int]:
        """Take ownership: bump each partition's generation. A worker that lost a partition
        without noticing (a long GC pause, a network split) is fenced off by this number."""
        if not partitions:
            return {}
        pipe = self.client.pipeline(transaction=not self.cluster)   # each HINCRBY is atomic
        for name in partitions:
            pipe.hincrby(self.keys.progress("generations", name), name, 1)
        return dict(zip(partitions, pipe.execute(), strict=True))

    def checkpoint(self, dirty: Mapping[Slot, Rows], offsets: Mapping[str, int],
                   highs: Mapping[str, float], generations: Mapping[str, int] | None = None,
                   stats: Mapping[str, int] | None = None,
                   expected: Mapping[str, int | None] | None = None,
                   marks: Mapping[str, float] | None = None,
                   extra: Sequence[bytes] = ()) -> int:
        """Windows, and the offsets they cover, in one transaction, applied only while
        every partition in `generations` is still ours (WATCH on the generations).

        `stats` (counter increments, e.g. accepted:gas) ride in the same transaction, so the
        dashboard's counters count each reading once, exactly like the windows. A broken
        connection is never retried here: EXEC may have run, and only the offsets in
        Redis can tell; the worker restarts from them.

        `expected`: the offsets Redis must still hold for these partitions (what our last
        checkpoint wrote). Anything else means Redis lost acknowledged writes (a restart
        from an AOF that missed the last second, a failover to a lagging replica), and
        RolledBack is raised: state and offsets then roll back together.

        `extra`: more commands (RESP) for the transaction, absolute writes of this
        partition's own keys (insight state: insight_commands).

        On a cluster a call speaks for one partition (its keys share that slot)."""
        generations, expected = generations or {}, expected or {}
        home = self._home(dirty, [offsets, highs, marks or {}, generations, expected])
        gens, offs = self.keys.progress("generations", home), self.keys.progress("offsets", home)
        body = _Body(b"".join(extra), len(extra))   # extra first, like the meter windows
        parts = self._commands(dirty, offsets, highs, stats or {}, marks or {}, home, body)
        check = command("WATCH", gens)   # not offs: every worker of the group writes it
        if generations:
            check += command("HMGET", gens, *generations)
        if expected:
            check += command("HMGET", offs, *expected)
        with self._lock:
            sock = self._socket(offs)
            try:
                for _ in range(20):
                    replies = sock.roundtrip(check, 1 + bool(generations) + bool(expected))
                    try:
                        if generations:
                            self._check_generations(generations, replies[1])
                        if expected:
                            self._check_offsets(expected, replies[-1])
                    except (Fenced, RolledBack):
                        sock.roundtrip(command("UNWATCH"), 1)
                        raise
                    self._send(sock, body.head, parts)
                    parts = iter(body.parts)    # packed: a retry sends them again
                    replies = sock.transaction_replies(body.count)
                    if replies[-1] is not None:
                        self._after_exec(replies[-1], dirty, sock)
                        self.acknowledged.update(offsets)
                        if body.trims:   # pipelined: each call is still its own short step
                            sock.roundtrip(b"".join(c for c, _ in body.trims),
                                           sum(n for _, n in body.trims))
                        return body.written
                    # someone's rebalance touched the generations: check again
            except (OSError, redis.RedisError):
                self._stale_routes = self.cluster   # a failover or a moved slot: re-read
                raise
        raise Fenced("ownership kept changing during 20 checkpoint attempts")

    def _home(self, dirty: Mapping[Slot, Rows], named: list[Mapping[str, object]]
              ) -> str | None:
        """The partition ("gas:3") a cluster checkpoint speaks for; None: no partition (a
        heartbeat), or one Redis, where a call may span partitions."""
        if not self.cluster:
            return None
        names = {n for m in named for n in m}
        for (utility, level, _), rows in dirty.items():
            part = rows.k1.astype(np.int64) if level == "state" else rows.part
            if len(rows) and part is not None:
                names.update(f"{utility}:{int(p)}" for p in np.unique(part[part >= 0]))
        if len(names) > 1:
            raise ValueError(f"a cluster checkpoint speaks for one partition, got {sorted(names)}")
        return names.pop() if names else None

    @staticmethod
    def _send(sock: RespConnection, head: bytes, parts: Iterator[bytes]) -> None:
        """MULTI, the body and EXEC. The commands are sent as they are packed: Redis queues
        one part while Python packs the next (packing a checkpoint of 100k windows takes
        tens of ms). A failure half-way closes the socket, so Redis drops the MULTI."""
        try:
            sock.send(command("MULTI") + head)
            for part in parts:
                sock.send(part)
            sock.send(command("EXEC"))
        except BaseException:
            sock.close()
            raise

    def _socket(self, key: str) -> RespConnection:
        """The checkpoint socket to the primary serving `key`."""
        opts = node_of(self.client, key, refresh=self._stale_routes)
        if self._stale_routes:
            for old in self._sockets.values():
                old.close()
            self._sockets, self._stale_routes = {}, False
        where = str(opts.get("path") or (opts.get("host"), opts.get("port")))
        if where not in self._sockets:
            self._sockets[where] = RespConnection(opts)
        return self._sockets[where]

    def _after_exec(self, reply: object, dirty: Mapping[Slot, Rows],
                    sock: RespConnection) -> None:
        """EXEC ran. Queue-time errors (OOM, say) abort it whole: raise, nothing applied.
        A failing commit.lua (the last command) applied nothing of its own either: the
        offsets did not move, raise StoreCorrupted. A failing per-meter HSET (someone wrote
        another type at that key) is repaired: the foreign key goes, and this checkpoint's
        windows are written again (absolute values; the offsets already cover them)."""
        if not isinstance(reply, list):
            raise_if_error(reply)
            return
        errors = [r for r in reply if type(r) is hiredis.ReplyError]
        if not errors:
            return
        if type(reply[-1]) is hiredis.ReplyError:
            raise StoreCorrupted(f"checkpoint refused, nothing applied: {reply[-1]}")
        self._repair(dirty, errors, sock)

    def _repair(self, dirty: Mapping[Slot, Rows], errors: list, sock: RespConnection) -> None:
        keys: list[str] = []
        for (utility, level, size), rows in dirty.items():
            if level == "meter" and len(rows):
                parts = rows.part if rows.part is not None else np.full(len(rows), -1)
                pairs = zip(uuid_text(rows.k0, rows.k1).tolist(), parts.tolist(), strict=True)
                for sid, p in dict.fromkeys(pairs):
                    p = p if p >= 0 else None
                    keys += [self.meter_key(sid, utility, size, p),
                             self.first_key(sid, utility, size, p)]
                keys += [self.meters_key(utility, int(p))
                         for p in np.unique(rows.part[rows.part >= 0])] \
                    if rows.part is not None else []
        pipe = self.client.pipeline(transaction=False)
        for k in keys:
            pipe.type(k)
        wanted = {b"hash", b"set", b"none", "hash", "set", "none"}
        bad = [k for k, t in zip(keys, pipe.execute(), strict=True) if t not in wanted]
        log.error("checkpoint: %d command(s) failed (%s); %s held another type and are "
                  "replaced by this checkpoint's windows (older windows stored there are "
                  "lost: `auth-kappa replay correct` rebuilds them from the archive)",
                  len(errors), errors[0], bad or "no key")
        if not bad:
            raise StoreCorrupted(f"checkpoint commands failed: {errors[0]}")
        self.client.delete(*bad)
        self._indexed.clear()
        self._loaded.clear()
        body, n = b"", 0
        for (utility, level, size), rows in dirty.items():
            if level == "meter" and len(rows):
                keep = self._specs[size].keep(level)
                again = Rows(**{**rows.__dict__, "new": np.ones(len(rows), bool),
                                "held": None})
                cmds, _ = self._meter_commands(utility, size, again, keep, keep + TTL_SLACK,
                                               "")
                body += b"".join(c for c, _ in cmds)
                n += sum(k for _, k in cmds)
        sock.roundtrip(command("MULTI") + body + command("EXEC"), n + 2)

    @staticmethod
    def _check_generations(mine: Mapping[str, int], stored: list) -> None:
        newer = [p for p, g in zip(mine, stored, strict=True) if int(g or 0) > mine[p]]
        older = [p for p, g in zip(mine, stored, strict=True) if int(g or 0) < mine[p]]
        if newer:
            raise Fenced(f"partitions {newer} now belong to another worker; this "
                         "checkpoint was discarded", newer)
        if older:
            raise RolledBack(f"Redis lost the claim on {older} (restarted or failed over "
                             "without it)")

    @staticmethod
    def _check_offsets(expected: Mapping[str, int | None], stored: list) -> None:
        lost = {p: (None if o is None else int(o)) for p, o in zip(expected, stored,
                                                                   strict=True)}
        lost = {p: o for p, o in lost.items() if o != expected[p]}
        if lost:
            raise RolledBack(f"Redis holds offsets {lost} where the last checkpoint wrote "
                             f"{ {p: expected[p] for p in lost} } (restarted or failed over "
                             "without it)")

    def _commands(self, dirty: Mapping[Slot, Rows], offsets: Mapping[str, int],
                  highs: Mapping[str, float], stats: Mapping[str, int],
                  marks: Mapping[str, float], home: str | None, body: _Body
                  ) -> Iterator[bytes]:
        """The transaction's commands as RESP, a part at a time, each also kept in `body`
        (with the count of commands, windows, and the retention trims to run after it).
        Scripts name one key of the slot (the offsets hash) so a cluster routes and checks
        them."""
        anchor = self.keys.progress("offsets", home)
        self._joining = {}
        blocks: list[tuple] = []            # state deltas: applied by commit.lua, last
        notice: list = []                   # the change notice's field/value pairs
        for (utility, level, size), rows in dirty.items():
            if not len(rows):
                continue
            keep = self._specs[size].keep(level)
            ttl = keep + TTL_SLACK
            if level == "meter":
                commands, trim = self._meter_commands(utility, size, rows, keep, ttl, anchor)
                yield body.add(commands)
                body.trims += trim
                changed = None if rows.held is None else ~rows.held   # the rest: as held
                if changed is None or changed.any():
                    notice += [f"m:{utility}:{size}", codec.change_blob(rows, changed)]
            else:
                states = np.array(STATES, dtype="S2")[rows.k0.astype(np.int64)]
                for p, pick in self._shares(rows):
                    part = rows if pick is None else rows.select(pick)
                    blob, rs = codec.state_blob(states if pick is None else states[pick], part)
                    blocks.append((self.state_key(utility, size, p),
                                   self.keys.newest(utility, size, p), blob, rs, keep, ttl, size))
                    notice += [f"s:{utility}:{size}", blob]   # deltas (one share on a cluster)
            body.written += len(rows)
        self._joined()
        notice += [a for k, v in highs.items() for a in (f"h:{k}", int(v))]
        out: list[tuple[bytes, int]] = []   # (commands, how many)
        if notice and (home is not None or not self.cluster):   # one slot: the checkpoint's
            out.append((command("EVAL", self._notice_lua, 2, *self.keys.changes(home),
                                NOTICES_KEPT, TTL_SLACK, *notice), 1))
        args: list = [ALL_STATES, len(blocks), *(a for b in blocks for a in b)]
        for kind, pairs in (("offsets", offsets.items()),
                            ("highs", [(k, int(v)) for k, v in highs.items()]),
                            ("marks", [(k, int(v)) for k, v in marks.items()]),
                            ("stats", [(k, int(n)) for k, n in stats.items() if n])):
            pairs = list(pairs)
            args += [self.keys.progress(kind, home), len(pairs), *_flat(pairs)]
        args.append(f"{time.time():.3f}")
        # every key the script writes, declared: while a cluster migrates the slot, a key
        # already moved then refuses the transaction (ASK/TRYAGAIN) instead of the script
        # recreating it on the old node, where it would be lost
        declared = list(dict.fromkeys([anchor, *(k for b in blocks for k in b[:2]),
                                       *(self.keys.progress(kind, home) for kind in
                                         ("offsets", "highs", "marks", "stats"))]))
        out.append((command("EVAL", self._commit_lua, len(declared), *declared, *args), 1))
        yield body.add(out)

    def _shares(self, rows: Rows) -> list[tuple[int | None, np.ndarray | None]]:
        """State rows by the partition whose share they are (a cluster; k1 = partition),
        or all together (one Redis)."""
        if not self.cluster:
            return [(None, None)]
        part = rows.k1.astype(np.int64)
        return [(int(p), part == p) for p in np.unique(part)]

    def _meter_commands(self, utility: str, size: int, rows: Rows, keep: int, ttl: int,
                        anchor: str) -> tuple[list[tuple[bytes, int]], list[tuple[bytes, int]]]:
        """Every window is a plain HSET; a new one also refreshes its key's TTL. Trimming
        the window that left retention is idempotent, so it runs after the transaction in
        short steps (`trims`, see _trims), keeping every blocking step short."""
        if self.cluster:   # keys by the meter's partition (one per call, see _home)
            parts = np.full(len(rows), -1) if rows.part is None else rows.part.astype(np.int64)
            unknown = parts < 0   # rows no reading touched: placed by the partitioner
            if unknown.any():
                parts[unknown] = self.partition_of(
                    utility, uuid_bytes(rows.k0[unknown], rows.k1[unknown]))
            out, trims = [], []
            for p in np.unique(parts):
                o, t = self._meter_commands_at(utility, size, rows.select(parts == p), keep,
                                               ttl, anchor, int(p))
                out += o
                trims += t
            return out, trims
        return self._meter_commands_at(utility, size, rows, keep, ttl, anchor, None)

    def _meter_commands_at(self, utility: str, size: int, rows: Rows, keep: int, ttl: int,
                           anchor: str, partition: int | None
                           ) -> tuple[list[tuple[bytes, int]], list[tuple[bytes, int]]]:
        words = self.words(size)
        new = np.ones(len(rows), bool) if rows.new is None else rows.new
        sid = uuid_bytes(rows.k0, rows.k1)
        head, tail = self.keys.meter_parts("m", utility, size, partition)
        keys = concat(head, sid, tail)
        values = codec.values(rows, words)
        starts = rows.window_start
        wide = widths(starts)
        write = np.ones(len(rows), bool) if rows.held is None else ~rows.held
        out: list[tuple[bytes, int]] = []
        for w in np.unique(wide[write]):
            pick = write & (wide == w)
            out.append((pack(b"HSET", keys[pick], decimal(starts[pick]), values[pick]),
                        int(pick.sum())))
        out += self._first_commands(utility, size, rows, sid, new, wide, ttl, partition)
        fresh = np.flatnonzero(new)
        once = _renewals(rows, fresh, size)
        if len(once):
            out.append((pack(b"EXPIRE", keys[once], str(ttl).encode()), len(once)))
        if size == self._finest:
            out += self._index_meters(utility, rows, sid, new)
        fhead = self.keys.meter_parts("f", utility, size, partition)[0] if words else b""
        return out, self._trims(utility, rows, fresh, sid, keys, size, keep, anchor, head,
                                tail, fhead)

    def _trims(self, utility: str, rows: Rows, fresh: np.ndarray, sid: np.ndarray,
               keys: np.ndarray, size: int, keep: int, anchor: str, head: bytes, tail: bytes,
               fhead: bytes) -> list[tuple[bytes, int]]:
        """Retention for new windows. One whose predecessor the store holds (rows.cont)
        continues a run: the one window its cut passed goes, by a plain HDEL (~1.4 us of
        Redis a window against ~6.5 us in trim_meters.lua, which takes the others, a
        window after a gap or a meter's first here, in small calls, sweeping the meter's
        first values too: fhead, "" at sizes that keep none). A run leaves the first
        values alone: a final window's go with a later checkpoint, or with the sweep of
        the partition's next owner (drop_final_firsts). A meter's first window in the
        store needs no trim at all (see _unstored): ~11 us of Redis each."""
        cont = np.zeros(len(rows), bool) if rows.cont is None else rows.cont
        run, rest = fresh[cont[fresh]], fresh[~cont[fresh]]
        rest = rest[~self._unstored(utility, rows, sid, rest)]
        out: list[tuple[bytes, int]] = []
        cut = (rows.window_start[run] - keep) // size * size
        run, cut = run[cut >= 0], cut[cut >= 0]   # below 0: no window start to delete
        wide = widths(cut)
        for w in np.unique(wide):
            pick = run[wide == w]
            field = decimal(cut[wide == w])
            out.append((pack(b"HDEL", keys[pick], field), len(pick)))
        starts = rows.window_start
        out += [(command("EVAL", self._trim_lua, 1, anchor, head, tail,
                         codec.meter_starts_blob(sid[part], starts[part]), keep, fhead), 1)
                for part in np.array_split(rest, -(-len(rest) // TRIM_CHUNK))] \
            if len(rest) else []
        return out

    def _first_commands(self, utility: str, size: int, rows: Rows, sid: np.ndarray,
                        new: np.ndarray, wide: np.ndarray, ttl: int, partition: int | None
                        ) -> list[tuple[bytes, int]]:
        """Open windows' first values (HSET, in the window's transaction); a final window's
        field is deleted (HDEL) unless it was never stored. Packed like the windows."""
        groups, gone = codec.firsts(rows, self.words(size))
        if not groups and not len(gone):
            return []
        head, tail = self.keys.meter_parts("f", utility, size, partition)
        keys = concat(head, sid, tail)
        starts, out = rows.window_start, []
        for idx, blob in groups:
            for w in np.unique(wide[idx]):
                sel = wide[idx] == w
                out.append((pack(b"HSET", keys[idx[sel]], decimal(starts[idx[sel]]), blob[sel]),
                            int(sel.sum())))
        fresh = np.concatenate([idx[new[idx]] for idx, _ in groups]) if groups else gone[:0]
        fresh = fresh[first_of_each(rows.k0[fresh], rows.k1[fresh])]
        if len(fresh):
            out.append((pack(b"EXPIRE", keys[fresh], str(ttl).encode()), len(fresh)))
        gone = gone[~new[gone]]
        for w in np.unique(wide[gone]):
            pick = gone[wide[gone] == w]
            out.append((pack(b"HDEL", keys[pick], decimal(starts[pick])), len(pick)))
        return out

    def drop_final_firsts(self, utility: str, partition: int, k0: np.ndarray,
                          k1: np.ndarray, cut: float) -> int:
        """First values of these meters' final windows (start < cut) that a crash or a
        rebalance left behind (drop_firsts.lua), swept by the partition's new owner;
        ~3 us of Redis a meter, in calls of TRIM_CHUNK meters. Returns how many went."""
        if not self.words(self._finest) or not len(k0) or not np.isfinite(cut):
            return 0
        home = f"{utility}:{partition}" if self.cluster else None
        head, tail = self.keys.meter_parts("f", utility, self._finest,
                                           partition if self.cluster else None)
        anchor = self.keys.progress("offsets", home)
        sid = uuid_bytes(k0, k1)
        return sum(int(self.client.eval(self._drop_firsts_lua, 1, anchor, head, tail,
                                        b"".join(part.tolist()), int(cut)))
                   for part in np.array_split(sid, -(-len(sid) // TRIM_CHUNK)))

    def first_key(self, service_id: str, utility: str, size: int,
                  partition: int | None = None) -> str:
        if self.cluster and partition is None:
            partition = int(self.partition_of(utility, [service_id])[0])
        return self.keys.first_values(service_id, utility, size, partition)

    def meters_key(self, utility: str, partition: int) -> str:
        return self.keys.meters(utility, partition)

    def _index_meters(self, utility: str, rows: Rows, sid: np.ndarray,
                      new: np.ndarray) -> list[tuple[bytes, int]]:
        """Meters not yet in their partition's set join it, in the transaction that first
        stores one of their windows. Steady state costs nothing: only a meter's first
        window on a partition is unknown here. The set's TTL is renewed at least every
        `index_refresh` s while the partition writes: a fleet with no new meter must not
        lose it (reopen and retention read it after a restart)."""
        if rows.part is None:
            return []
        out: list[tuple[bytes, int]] = []
        ttl = max(s.keep("meter") for s in self.windows) + TTL_SLACK
        pick = new & (rows.part >= 0)
        now = time.monotonic()
        for p in np.unique(rows.part[pick]):
            known = self._indexed.setdefault((utility, int(p)), set())
            cand = sid[pick & (rows.part == p)].tolist()
            joining = self._joining.setdefault((utility, int(p)), set())
            unknown = [m for m in dict.fromkeys(cand) if m not in known and m not in joining]
            key = self.meters_key(utility, int(p))
            if unknown:
                out.append((command("SADD", key, *unknown), 1))
                joining.update(unknown)
            if unknown or now - self._renewed.get(key, -np.inf) >= self.index_refresh:
                out.append((command("EXPIRE", key, ttl), 1))
                self._renewed[key] = now
        return out

    def _joined(self) -> None:
        """The checkpoint's commands are built: the meters it indexes count as known."""
        for key, meters in self._joining.items():
            self._indexed.setdefault(key, set()).update(meters)
        self._joining = {}

    def _unstored(self, utility: str, rows: Rows, sid: np.ndarray, pick: np.ndarray
                  ) -> np.ndarray:
        """Of the rows at `pick`, each meter's earliest whose meter the store holds no
        window of (not in its partition's index as loaded, before this checkpoint): its
        retention sweep would find nothing to delete."""
        if rows.part is None or not len(pick):
            return np.zeros(len(pick), bool)
        order = np.lexsort((rows.window_start[pick], rows.k1[pick], rows.k0[pick]))
        k0, k1 = rows.k0[pick][order], rows.k1[pick][order]
        first = np.ones(len(pick), bool)
        first[1:] = (k0[1:] != k0[:-1]) | (k1[1:] != k1[:-1])
        out = np.zeros(len(pick), bool)
        for i in order[first]:
            p = int(rows.part[pick[i]])
            if (utility, p) in self._loaded and sid[pick[i]] not in self._indexed[(utility, p)]:
                out[i] = True
        return out

    def indexed_meters(self, utility: str, partition: int) -> tuple[np.ndarray, np.ndarray]:
        """(k0, k1) of the meters a partition has stored windows for; also what this store
        then knows not to add again."""
        raw = sorted(self.client.smembers(self.meters_key(utility, partition)))
        self._indexed[(utility, partition)] = set(raw)
        self._loaded.add((utility, partition))
        keys, _ = uuid_keys(np.array(raw, "S36"))
        return keys[:, 0].copy(), keys[:, 1].copy()

    # ---- insight state (auth_kappa/insights), one partition's keys
    def insight_commands(self, utility: str, partition: int, changes: InsightChanges,
                         history_days: float = 7.0) -> list[bytes]:
        """A partition's insight changes as commands for its checkpoint transaction."""
        out: list[bytes] = []
        for kind, values in (("last", changes.last), ("runs", changes.runs),
                             ("alerts", changes.alerts), ("days", changes.days)):
            key = self.keys.insight(kind, utility, partition)
            put = [x for f, v in values.items() if v is not None for x in (f, v)]
            gone = [f for f, v in values.items() if v is None]
            if put:
                out.append(command("HSET", key, *put))
            if gone:
                out.append(command("HDEL", key, *gone))
        if changes.closed:
            key = self.keys.insight("history", utility, partition)
            out.append(command("ZADD", key, *(x for end, raw in changes.closed
                                              for x in (f"{end:.0f}", raw))))
            newest = max(end for end, _ in changes.closed)
            out.append(command("ZREMRANGEBYSCORE", key, "-inf",
                               f"({newest - history_days * 86400:.0f}"))
        for sid, date, raw in changes.past_days:
            key = self.keys.days(sid, utility, partition)
            out += [command("HSET", key, date, raw), command("HDEL", key, expired(date))]
        for (date, profile), sketch in changes.sketches.items():
            out += [command("HSET", self.keys.similar(utility, partition, date), profile,
                            sketch),
                    command("DEL", self.keys.similar(utility, partition, expired(date)))]
        return out

    def insight_state(self, utility: str, partition: int) -> dict[str, dict]:
        """A partition's persisted insight state: last, runs, (open) alerts, open days,
        and the similar-homes sketches of its newest days."""
        pipe = self.client.pipeline(transaction=False)
        kinds = ("last", "runs", "alerts", "days")
        for kind in kinds:
            pipe.hgetall(self.keys.insight(kind, utility, partition))
        state = dict(zip(kinds, pipe.execute(), strict=True))
        newest = max((v[:10].decode() for v in state["days"].values()), default="")
        dates = sketch_dates(newest) if newest else []
        for date in dates:
            pipe.hgetall(self.keys.similar(utility, partition, date))
        state["sketches"] = {(date, f.decode()): v for date, fields in
                             zip(dates, pipe.execute() if dates else [], strict=True)
                             for f, v in fields.items()}
        return state

    def meter_days(self, utility: str, service_id: str) -> list[bytes]:
        """A meter's local days (bills.Day records): the past ones, then the open one."""
        n = self.partition_counts(refresh=True).get(utility, 0)
        if not n:
            return []
        pipe = self.client.pipeline(transaction=False)
        past, *opens = self.keys.day_keys(service_id, utility, n)
        pipe.hvals(past)
        for key in opens:
            pipe.hget(key, service_id)
        replies = pipe.execute()
        return day_records(replies[0], replies[1:])

    def sketches(self, utility: str, date: str) -> dict[str, list[bytes]]:
        """Every partition's similar-homes sketches of a local day: "<state>:<type>" ->
        the shares to merge."""
        n = self.partition_counts(refresh=True).get(utility, 0)
        pipe = self.client.pipeline(transaction=False)
        for p in range(n):
            pipe.hgetall(self.keys.similar(utility, p, date))
        return sketch_shares(pipe.execute() if n else [])

    def alerts(self) -> list[bytes]:
        """Every open alert and the closed ones still in history (JSON), all partitions."""
        pipe = self.client.pipeline(transaction=False)
        for utility, n in self.partition_counts(refresh=True).items():
            for p in range(n):
                pipe.hvals(self.keys.insight("alerts", utility, p))
                pipe.zrange(self.keys.insight("history", utility, p), 0, -1)
        return [raw for part in pipe.execute() for raw in part]

    def partition_windows(self, utility: str, size: int, partition: int,
                          before: float) -> Rows:
        """Every stored meter window of a partition's meters starting before `before`
        (one pipelined HGETALL per meter; seen bits at the finest size): the history
        insights rebuild on assignment."""
        k0, k1 = self.indexed_meters(utility, partition)
        sids = uuid_text(k0, k1).tolist()
        pipe = self.client.pipeline(transaction=False)
        for sid in sids:
            pipe.hgetall(self.meter_key(sid, utility, size, partition))
        keys, starts, raw = [], [], []
        for i, fields in enumerate(pipe.execute() if sids else []):
            for f, v in fields.items():
                if int(f) < before:
                    keys.append(i)
                    starts.append(int(f))
                    raw.append(v)
        idx = np.array(keys, np.int64)
        words = self.words(size)
        vals = codec.decode_values(raw, words)
        return Rows(k0[idx], k1[idx], np.array(starts, np.int64), vals["sum"].copy(),
                    vals["count"].copy(), vals["min"].copy(), vals["max"].copy(),
                    vals["seen"].copy() if words else None,
                    part=np.full(len(idx), partition, np.int32))

    # ---- reads
    def progress(self, kind: str) -> dict[str, float]:
        """A progress hash of the group (a cluster's: every partition's, merged)."""
        keys = self.keys.progress_keys(kind, self.partition_counts(refresh=self.cluster)
                                       if self.cluster else {})
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        return merged(kind, pipe.execute())

    def stats(self) -> dict[str, float]:
        """Running counters published by the workers' checkpoints (see _commands)."""
        return self.progress("stats")

    def offsets(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.progress("offsets").items()}

    def highs(self) -> dict[str, int]:
        """Each partition's clock: the highest end_ts applied."""
        return {k: int(v) for k, v in self.progress("highs").items()}

    def marks(self) -> dict[str, int]:
        """Idle partitions' advances: how far each lets the watermark go past its clock."""
        return {k: int(v) for k, v in self.progress("marks").items()}

    def watermarks(self) -> dict[str, float]:
        """Per utility: the lowest over its partitions of clock-or-mark (what the workers'
        watermark is, as of their last checkpoints)."""
        return watermarks_and_newest(self.highs(), self.marks())[0]

    def loader(self, slot: Slot, newer_than: float) -> Loader | None:
        """Fetch stored windows for rows not in memory; windows past `newer_than` are new."""
        utility, level, size = slot
        if level != "meter":
            return None  # state windows are deltas: they always start empty

        def load(k0: np.ndarray, k1: np.ndarray, ws: np.ndarray) -> dict[str, np.ndarray] | None:
            need = np.flatnonzero(ws <= newer_than)
            if not len(need):
                return None
            sids = uuid_text(k0[need], k1[need])
            parts = self.partition_of(utility, sids).tolist() if self.cluster \
                else [None] * len(sids)
            pipe = self.client.pipeline(transaction=False)
            words = self.words(size)
            for sid, w, p in zip(sids, ws[need], parts, strict=True):
                pipe.hget(self.meter_key(sid, utility, size, p), str(int(w)))
                if words:
                    pipe.hget(self.first_key(sid, utility, size, p), str(int(w)))
            raw = pipe.execute()
            got = codec.decode_values(raw[::2] if words else raw, words)
            init = {name: np.zeros(len(ws), got.dtype[name].base) for name in
                    ("sum", "count", "min", "max")}
            init["min"][:], init["max"][:] = np.inf, -np.inf
            for name in init:
                init[name][need] = got[name]
            if self.words(size):
                seen = np.zeros((len(ws), self.words(size)), np.uint64)
                seen[need] = got["seen"]
                init["seen"] = seen
                first = np.full((len(ws), 64 * words), UNKNOWN, np.uint64)
                first[need] = codec.decode_firsts(got["seen"], raw[1::2])
                init["first"] = first
            init["stored"] = np.zeros(len(ws), bool)
            init["stored"][need] = got["count"] > 0
            return init
        return load

    def read_windows(self, level: str, utility: str, size: int, key: str | None = None
                ) -> pd.DataFrame:
        """Stored windows as the public frame (open ones as of the last checkpoint)."""
        cols = ["utility", "key", "window_start", "window_end", "sum", "count", "min", "max"]
        if level == "state":
            raw = self.state_windows(utility, size)
            fields = [(f.decode().split(":"), v) for f, v in raw.items()]
            if key is not None:
                fields = [(f, v) for f, v in fields if f[0] == key]
            keys = [f[0] for f, _ in fields]
            starts = np.array([int(f[1]) for f, _ in fields], np.int64)
            vals = codec.decode_values([v for _, v in fields], 0)
        else:
            if key is None:
                raise ValueError("meter-level reads need a service_id (key=...)")
            raw = self.client.hgetall(self.meter_key(key, utility, size))
            keys = [key] * len(raw)
            starts = np.array([int(f) for f in raw], np.int64)
            vals = codec.decode_values(list(raw.values()), self.words(size))
        df = pd.DataFrame({"utility": utility, "key": keys, "window_start": starts,
                           "window_end": starts + size, "sum": vals["sum"],
                           "count": vals["count"], "min": vals["min"], "max": vals["max"]})
        return df[cols].sort_values(["key", "window_start"]).reset_index(drop=True)

    def state_windows(self, utility: str, size: int) -> dict[bytes, bytes]:
        """A utility's state windows, field -> value (a cluster's partition shares summed,
        one pipelined round trip per node)."""
        keys = self.keys.state_keys(utility, size,
                                    self.partition_counts().get(utility, 0) if self.cluster else 1)
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        return codec.add_shares(pipe.execute())

    def drop_namespace(self, batch: int = 1000) -> int:
        """Delete every key of this namespace (after a rebuild's switch), in SCAN batches
        on every primary."""
        n = 0
        for node in primaries(self.client):
            for keys in _chunks(node.scan_iter(match=self.keys.everything, count=batch), batch):
                pipe = node.pipeline(transaction=False)   # a cluster's keys span slots
                for key in keys:
                    pipe.unlink(key)
                n += sum(pipe.execute())
        return n


@dataclass
class _Body:
    """A checkpoint transaction's commands, kept as they are packed (a retry sends them
    again), with what the caller needs once it is applied."""
    head: bytes                     # commands sent first (insight state)
    count: int                      # commands, for their replies
    parts: list[bytes] = field(default_factory=list)
    written: int = 0                # windows
    # retention, after the transaction: (commands, how many)
    trims: list[tuple[bytes, int]] = field(default_factory=list)

    def add(self, commands: list[tuple[bytes, int]]) -> bytes:
        part = b"".join(c for c, _ in commands)
        self.parts.append(part)
        self.count += sum(n for _, n in commands)
        return part


def _renewals(rows: Rows, fresh: np.ndarray, size: int) -> np.ndarray:
    """The new windows whose meter key gets its TTL (retention + TTL_SLACK) renewed, one a
    key: any that starts a run (the key may be new), else the first of each RENEW_EVERY
    of event time. A meter key is never empty while its meter reports (retention trims
    run after the window's HSET), so hourly keeps it a day past retention; renewing it
    with every new minute cost a quarter of a meter's Redis commands."""
    due = np.ones(len(fresh), bool) if rows.cont is None else ~rows.cont[fresh]
    ws, step = rows.window_start[fresh], max(size, RENEW_EVERY)
    due |= ws // step != (ws - size) // step
    pick = fresh[due]
    return pick[first_of_each(rows.k0[pick], rows.k1[pick])]


def _flat(pairs) -> list:
    return [x for pair in pairs for x in pair]


class Fenced(RuntimeError):
    """This worker no longer owns a partition it was about to write for."""

    def __init__(self, message: str, partitions: list[str] | None = None) -> None:
        super().__init__(message)
        self.partitions = partitions or []


class StoreCorrupted(RuntimeError):
    """A key of ours holds something else: the checkpoint was refused with nothing
    applied. Not retried (it would fail again): the worker stops with this message."""


class RolledBack(RuntimeError):
    """Redis no longer holds a checkpoint it acknowledged: memory is ahead of it."""


def _chunks(it, n):
    buf = []
    for x in it:
        buf.append(x)
        if len(buf) >= n:
            yield buf
            buf = []
    if buf:
        yield buf
