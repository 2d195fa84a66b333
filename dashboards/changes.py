"""The checkpoints' change stream, followed: household reads that never wait on a checkpoint.

Every worker checkpoint adds, in its own MULTI/EXEC, a notice to the namespace's capped
stream (auth_kappa/state/lua/notice.lua): a sequence number n and the meter windows it
wrote, as absolute values. One task here tails it (XREAD BLOCK on its own connection, on
the serving loop: a read handed to a thread stalled the loop ~10 ms a notice) into
a MeterView (dashboards/meter_view.py); a household read is answered from that view
without a Redis round trip, so it never queues behind a checkpoint transaction. The
notices' per-state deltas keep a FleetView (dashboards/fleet_view.py) for the fleet pages,
started from a snapshot read with the counter when the tail takes its position.

Exactness, whatever was missed:
- a meter not in the view (a fresh or restarted dashboard, an evicted meter) is read once
  in a MULTI with the stream's counter S, and installed as of S; notices the tail applied
  while that read was out are kept for it and replayed (those above S), later ones
  skip it when not above S;
- a notice number that does not follow the last one (the stream was trimmed past us, the
  stream or Redis was reset, a connection dropped) empties the view; the meters it held
  are read in again in the background, a hundred per MULTI (a request for one of them
  meanwhile reads it in itself);
- until the tail has its first position, for a Redis user that may not MULTI, and on a
  Redis Cluster (one stream per partition; not followed yet), reads go to Redis as before.
The notices also carry the checkpoint's partition clocks, so the page's clock moves with
them instead of once a poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping

import numpy as np
import redis.asyncio as aredis
from redis.exceptions import NoPermissionError, RedisError

from auth_kappa.state import codec
from auth_kappa.state.layout import Layout
from auth_kappa.topology.keys import uuid_text
from auth_kappa.topology.schema import STATES, UTILITIES
from dashboards import registry
from dashboards.fleet_view import FleetView
from dashboards.meter_view import Key, MeterView, meter_key

log = logging.getLogger("dashboards")
BLOCK_MS = 1000        # one XREAD waits at most this long
BATCH = 8              # notices per XREAD (one can be MBs flat out)
PART_ROWS = 8192       # a notice's meter windows applied per turn of the loop (~1.5 ms)


Block = tuple[str, int, np.ndarray]   # (utility, window size, codec.CHANGE records)


def by_meter(blocks: list[Block], rows: int) -> Iterator[list[Block]]:
    """The blocks cut into parts of about `rows` records by ranges of meter key (the top
    bits of the key's first half, uniform for uuids): all of a meter's records, in every
    block, fall in one part. Lazily, a part per next(): the caller yields the loop
    between them, and no step sorts or copies the whole notice (a stable argsort and
    gather of 75k records held the loop 12 ms)."""
    parts = 1 << (sum(len(r) for *_, r in blocks) // rows).bit_length()
    if parts == 1:
        yield blocks
        return
    shift = np.uint64(64 - parts.bit_length() + 1)
    kind = np.uint8 if parts <= 256 else np.uint32
    labelled = [(utility, size, records, (records["k0"] >> shift).astype(kind))
                for utility, size, records in blocks]
    for i in range(parts):
        yield [(utility, size, records[part == i]) for utility, size, records, part in labelled]


class Changes:
    """The tail and the view; `on_clocks` gets each notice's partition clocks."""

    def __init__(self, url: str, view: MeterView, registry_prefix: str,
                 on_clocks: Callable[[dict[str, int]], None],
                 fleet: FleetView | None = None) -> None:
        self.url, self.view, self.registry_prefix = url, view, registry_prefix
        self.on_clocks = on_clocks
        self.fleet = fleet
        self.stream = self.counter = ""
        self.keys: Layout | None = None
        self.n: int | None = None          # last notice applied; None: no position
        self.last_id = b"0-0"
        self.pending: dict[Key, list] = {}  # meters being read: the notices since
        self.resets = self.loads = self.hits = self.reloaded = 0
        self.epoch = 0                      # resets so far: a reload of an older one stops
        self._held: list[Key] = []          # what the view held before the last reset
        self._unread: list[Key] = []        # of those, what the reload has not read yet
        self.reload_chunk = 100             # meters per MULTI when reading them in again
        self.part_rows = PART_ROWS          # a notice's meter windows per turn of the loop
        self.parts = 0                      # turns given back to requests mid-notice
        self._reloading: asyncio.Task | None = None
        self.caught = 0   # notices applied to a meter after its snapshot, before it was in
        self.notices, self.age_sum, self.age_max = 0, 0.0, 0.0   # see _aged
        self.snapshots = True               # False: the Redis user may not MULTI
        self._changed = asyncio.Event()
        self.changed_at = 0.0
        self._task: asyncio.Task | None = None
        self._client: aredis.Redis | None = None   # the tail's own: XREAD, position, snapshot
        self.reads: aredis.Redis | None = None     # the source's pool, for the loads

    # ---- lifecycle
    def follow(self, keys: Layout) -> None:
        """Tail this namespace's stream (a switch moves it: the view starts over)."""
        stream, counter = keys.changes()
        if stream != self.stream:
            self.stream, self.counter, self.keys = stream, counter, keys
            self._reset("namespace")
        if self._task is None:
            self._client = aredis.Redis.from_url(self.url, socket_timeout=BLOCK_MS / 1000 + 10,
                                                 socket_connect_timeout=5)
            self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        """Stop the tail. A cancelled read can hang in the client until its socket closes,
        so the connections are closed too if the task has not ended within a second."""
        if self._reloading is not None:
            self._reloading.cancel()
            await asyncio.wait({self._reloading}, timeout=1.0)
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=1.0)
        if self._client is not None:
            await self._client.connection_pool.disconnect(inuse_connections=True)
            await self._client.aclose()
        if self._task is not None:
            await asyncio.wait({self._task}, timeout=1.0)

    @property
    def ready(self) -> bool:
        return self.n is not None

    async def wait(self, timeout: float, since: float) -> None:
        """At once if a notice was applied after `since` (time.monotonic), else until the
        next one, or `timeout` seconds (the SSE loop's pace)."""
        if self.changed_at > since:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    def _reset(self, why: str) -> None:
        if self.n is not None or len(self.view):
            self.resets += 1
            log.info("dashboard: change stream %s (%s): the view starts over", self.stream, why)
        self.n, self.last_id = None, b"0-0"
        self.epoch += 1
        # the most recently read first, then what an interrupted reload had not read yet
        # (a reset during a reload must not shrink the view to what it got back so far)
        waiting, self._unread = self._unread, []
        if len(self.view) or waiting:
            self._held = list(dict.fromkeys([*list(self.view.slots)[::-1], *waiting,
                                             *self._held]))
        self.view.clear()
        if self.fleet is not None:
            self.fleet.asof = None
        self.pending = {}   # loads in flight were missing notices too: not installed

    # ---- the tail
    async def _run(self) -> None:
        while True:
            try:
                if self.n is None:
                    await self._position()
                    if self._held and self.snapshots:
                        held, self._held = self._held, []
                        self._reloading = asyncio.create_task(self._reload(held, self.epoch))
                await self._step()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                self._reset(f"read failed: {exc}")
                await asyncio.sleep(0.5)

    async def _position(self) -> None:
        """Start at the newest notice: its number, or 0 on an empty stream."""
        last = await self._client.xrevrange(self.stream, count=1)
        if last:
            self.last_id, self.n = last[0][0], int(last[0][1][b"n"])
        else:
            self.last_id, self.n = b"0-0", 0
        if self.fleet is not None and self.snapshots:
            try:
                await self._fleet_snapshot()
            except NoPermissionError as exc:
                self._no_multi(exc)

    def _no_multi(self, exc: Exception) -> None:
        """A Redis user made before MULTI was granted: no snapshot can be taken, so
        nothing is held in memory and every read goes to Redis, as before."""
        self.snapshots = False
        log.warning("dashboard: the Redis user may not MULTI (%s); reads go to Redis. Run "
                    "`auth-kappa dashboard create-redis-user`.", exc)

    async def _fleet_snapshot(self, slack: int = 4) -> None:
        """The per-state windows memory holds, read with the counter in one MULTI (after
        the position: counter >= it). The newest starts are read first to know which
        fields; if one moved more than `slack` windows meanwhile, read again."""
        rings = list(self.fleet.rings.items())
        for _ in range(5):
            pipe = self._client.pipeline(transaction=False)
            for (utility, size), _ring in rings:
                pipe.get(self.keys.newest(utility, size))
            before = [None if v is None else int(v) for v in await pipe.execute()]
            asked = [[] if n is None else ring.fields(n, slack)
                     for n, (_, ring) in zip(before, rings, strict=True)]
            pipe = self._client.pipeline(transaction=True)
            pipe.get(self.counter)
            for ((utility, size), _ring), starts in zip(rings, asked, strict=True):
                pipe.get(self.keys.newest(utility, size))
                pipe.hmget(self.keys.state(utility, size),
                           [f"{st}:{w}" for st in STATES for w in starts] or ["-"])
            counter, *replies = await pipe.execute()
            newest = [None if v is None else int(v) for v in replies[0::2]]
            if all(a is None or (b is not None and a <= b + slack * r.size)
                   for a, b, (_, r) in zip(newest, before, rings, strict=True)):
                break
        else:
            raise RedisError("the fleet's newest windows kept moving during the snapshot")
        for (_, ring), n, starts, raw in zip(rings, newest, asked, replies[1::2], strict=True):
            ring.load(n, starts, raw if starts else [])
        self.fleet.asof = int(counter or 0)

    async def _step(self) -> None:
        stream = self.stream
        got = await self._client.xread({stream: self.last_id}, count=BATCH, block=BLOCK_MS)
        if stream != self.stream or self.n is None:   # moved or reset while we waited
            return
        for _, entries in got or ():
            for entry_id, fields in entries:
                n = int(fields.pop(b"n"))
                if n != self.n + 1:
                    self._reset(f"notice {n} after {self.n}")
                    return
                if not await self._apply(n, fields):
                    return   # reset while the notice was applied in parts
                self.n, self.last_id = n, entry_id
                self._aged(entry_id)
                self.changed_at = time.monotonic()
                self._changed.set()
                self._changed = asyncio.Event()
                await asyncio.sleep(0)   # requests run between notices, not after a batch
                if stream != self.stream or self.n != n:   # moved or reset meanwhile
                    return

    def _aged(self, entry_id: bytes) -> None:
        """How long after its checkpoint a notice reached the view (its stream id is the
        Redis clock at XADD, in ms): what the view adds to a reading's way to the screen."""
        age = max(0.0, time.time() - int(entry_id.split(b"-", 1)[0]) / 1000)
        self.notices += 1
        self.age_sum += age
        self.age_max = max(self.age_max, age)

    async def _apply(self, n: int, fields: Mapping[bytes, bytes]) -> bool:
        """Notice n into the view and the fleet; False if a reset came in between.

        A notice of 75k windows holds the serving loop ~13 ms, and every request that
        arrives meanwhile waits it out, so its meter windows go in parts of about
        `part_rows`, requests served between them (no gain measurable yet on 2 shared
        cores: benchmarks/README.md, 2026-12-03). A part is a range of
        meter keys across every block, so a meter is wholly as of n-1 or wholly as of n:
        each household answer is one Redis held (not the whole notice's, which no page
        shows). The page clocks and `n` move after the last part."""
        clocks: dict[str, int] = {}
        blocks: list[Block] = []
        for name, value in fields.items():
            kind, _, rest = name.decode().partition(":")
            if kind == "h":
                clocks[rest] = int(value)
            elif kind == "m":
                utility, size = rest.rsplit(":", 1)
                blocks.append((utility, int(size), np.frombuffer(value, codec.CHANGE)))
            elif kind == "s" and self.fleet is not None:
                utility, size = rest.rsplit(":", 1)
                self.fleet.apply(n, utility, int(size),
                                 np.frombuffer(value, codec.STATE_DELTA))
        epoch = self.epoch
        for i, part in enumerate(by_meter(blocks, self.part_rows)):
            if i:
                self.parts += 1
            await asyncio.sleep(0)   # requests first: the tail's read and the fleet were a step
            if self.epoch != epoch:
                return False
            for utility, size, records in part:
                self.view.apply(n, utility, size, records)
                if self.pending:
                    self._keep_pending(n, utility, size, records)
        if clocks:
            self.on_clocks(clocks)
        return True

    def _keep_pending(self, n: int, utility: str, size: int, records: np.ndarray) -> None:
        loading = np.fromiter((k[0] for k in self.pending), np.uint64, len(self.pending))
        rows = np.flatnonzero(np.isin(records["k0"], loading))
        for i in rows.tolist():
            notes = self.pending.get((int(records["k0"][i]), int(records["k1"][i])))
            if notes is not None:
                notes.append((n, utility, size, records[i:i + 1]))

    # ---- a meter not in the view
    async def meter(self, service_id: str, reads: list[tuple[str, int, list[int]]]
                    ) -> tuple[dict[str, str] | None, list[np.ndarray]] | None:
        """The view's answer, reading the meter in first if needed; None: ask Redis the
        ordinary way (no position yet, a load already under way, or older windows)."""
        key = meter_key(service_id)
        got = self.view.answer(key, reads)
        if got is not None:
            self.hits += 1
            return got
        if not self.ready or not self.snapshots or key in self.pending or self.keys is None:
            return None
        try:
            await self._load(service_id, key)
        except (RedisError, OSError) as exc:
            log.info("dashboard: reading meter %s in failed (%s): asking Redis", service_id, exc)
            return None
        return self.view.answer(key, reads)

    async def _load(self, service_id: str, key: Key) -> None:
        notes = self.begin(key)
        try:
            snapshot = await self.snapshot(service_id)
        except NoPermissionError as exc:
            self._no_multi(exc)
            return
        finally:
            self.end(key, notes)
        self.install(key, notes, *snapshot)

    def begin(self, key: Key) -> list:
        """From now on, notices for this meter are kept for it (before its read is sent)."""
        notes: list = []
        self.pending[key] = notes
        return notes

    def end(self, key: Key, notes: list) -> None:
        if self.pending.get(key) is notes:
            del self.pending[key]
        else:
            notes.clear()
            notes.append(None)   # the view was reset meanwhile: do not install

    async def snapshot(self, service_id: str) -> tuple[int, dict | None, dict]:
        """(notice counter S, registry entry, (utility, size) -> window hash) in one MULTI:
        exactly the state after notice S."""
        counter, ((entry, windows),) = await self.snapshots_of([service_id])
        return counter, entry, windows

    async def snapshots_of(self, service_ids: list[str]) -> tuple[int, list[tuple]]:
        """snapshot() of several meters in one MULTI: (S, [(entry, windows)] in order)."""
        asked = [(u, size) for size in self.view.sizes for u in UTILITIES]
        pipe = (self.reads or self._client).pipeline(transaction=True)
        pipe.get(self.counter)
        for sid in service_ids:
            pipe.hgetall(registry.meter_key(sid, self.registry_prefix))
            for utility, size in asked:
                pipe.hgetall(self.keys.meter(sid, utility, size))
        counter, *replies = await pipe.execute()
        out, step = [], 1 + len(asked)
        for i in range(0, len(replies), step):
            info, hashes = replies[i], replies[i + 1:i + step]
            entry = {k.decode(): v.decode() for k, v in info.items()} if info else None
            out.append((entry, dict(zip(asked, hashes, strict=True))))
        return int(counter or 0), out

    async def _reload(self, keys: list[Key], epoch: int) -> None:
        """After a reset: read the meters held before it in again, in the background, a
        chunk per MULTI (a request for one of them meanwhile reads it in itself)."""
        sids = uuid_text(np.array([k[0] for k in keys], np.uint64),
                         np.array([k[1] for k in keys], np.uint64)).tolist()
        chunk = self.reload_chunk
        for lo in range(0, len(keys), chunk):
            if self.epoch != epoch or not self.snapshots:
                return
            self._unread = keys[lo:]
            todo = [(k, s) for k, s in zip(keys[lo:lo + chunk], sids[lo:lo + chunk],
                                           strict=True)
                    if k not in self.view and k not in self.pending]
            if not todo:
                continue
            notes = [self.begin(k) for k, _ in todo]
            try:
                counter, got = await self.snapshots_of([s for _, s in todo])
            except NoPermissionError as exc:
                self._no_multi(exc)
                return
            except (RedisError, OSError):
                return   # the tail resets and starts another reload
            finally:
                for (k, _), note in zip(todo, notes, strict=True):
                    self.end(k, note)
            for (k, _), note, (entry, windows) in zip(todo, notes, got, strict=True):
                self.install(k, note, counter, entry, windows)
            self.reloaded += len(todo)
        if self.epoch == epoch:
            self._unread = []

    def install(self, key: Key, notes: list, asof: int, entry: dict | None,
                windows: dict) -> None:
        """The snapshot, then the notices after it that the tail applied meanwhile."""
        if notes[:1] == [None] or not self.ready:
            return
        self.view.install(key, asof, entry, windows)
        for n, utility, size, records in notes:
            self.view.apply(n, utility, size, records)
            self.caught += n > asof
        self.loads += 1
