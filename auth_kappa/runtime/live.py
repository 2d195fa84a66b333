"""The live runtime: topology + window store + side outputs, independent of the Kafka client.

The Faust app (and the benchmark's plain consumer) run it over Redis, feed it batches and
do what it asks: seek to the offsets it returns on assignment, send the side-output
records it emits. The embedded engine (runtime/embedded.py) is this runtime over the memory store,
fed finite input that ends with end_of_input().
Exactly-once effect comes from one rule: state and the offsets that produced it are
written in the same Redis transaction, and an owner always starts from those offsets.

One recovery path serves every fault (a Redis error, restart or failover, a lost
ownership, a failed checkpoint): the runtime drops everything it holds in memory and
the caller runs `assign` again, which reloads the last committed checkpoint and
returns the offsets to seek to. Nothing is ever committed past a failed checkpoint.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from auth_kappa.insights.alerts import Alert
from auth_kappa.insights.leaks import HOUR
from auth_kappa.insights.stage import Insights, encode
from auth_kappa.runtime import commits
from auth_kappa.runtime.checkpoint_writer import CheckpointWriter
from auth_kappa.runtime.counters import Counters
from auth_kappa.runtime.side_outputs import Emit, Outputs, emit_final, emit_rejected
from auth_kappa.state.protocol import WindowStore
from auth_kappa.topology.decode import Message, MessageBatch, next_offsets
from auth_kappa.topology.processor import Slot, StepResult, Topology
from auth_kappa.topology.watermark import NO_WATERMARK
from auth_kappa.topology.window_table import Rows

__all__ = ["Emit", "LiveRuntime", "Outputs"]
log = logging.getLogger("auth_kappa.live")


@dataclass
class LiveRuntime:
    topology: Topology
    # Redis (workers), or memory (the embedded engine, the test driver); the insights'
    # state goes to a store only when it keeps it (RedisWindowStore.insight_commands)
    store: WindowStore
    emit: Emit | None   # None: no side-output records (the caller reads each StepResult)
    outputs: Outputs = field(default_factory=Outputs)
    commit_interval: float = 0.25
    max_uncommitted: int = 250_000   # readings: bounds a checkpoint's size under load
    # while a checkpoint is applied, reading goes on up to this far past the last one
    # (readings a crash replays; final windows held in memory for the next checkpoint)
    max_ahead: tuple[int, int] = (4_000_000, 250_000)
    counters: Counters = field(default_factory=Counters)
    # the failure that made memory untrustworthy; set until the next assign()
    broken: BaseException | None = None
    # process/tick checkpoint when due; KafkaSource does it itself, flushing in between
    auto_checkpoint: bool = True
    _uncommitted: int = 0
    _generations: dict[str, int] = field(default_factory=dict)
    _next: dict[str, int] = field(default_factory=dict)        # "utility:p" -> next offset
    _sent: dict[str, int] = field(default_factory=dict)        # offsets handed to Redis
    _sent_highs: dict[str, float] = field(default_factory=dict)  # clocks handed to Redis
    _sent_marks: dict[str, float] = field(default_factory=dict)  # idle advances, the same
    _final: dict[Slot, list[Rows]] = field(default_factory=dict)
    # held final windows whose first values are still to delete (see _settle)
    _cleanup: dict[Slot, deque[Rows]] = field(default_factory=dict)
    cleanup_rate: float = 8_000      # held final windows cleaned a second, per slot
    cleanup_limit: int = 200_000     # held final windows waiting, per slot, at most
    _last_commit: float = field(default_factory=time.monotonic)
    # "gas:3" -> {"accepted:gas": n}: counters since the last checkpoint, per partition
    _stats: dict[str, dict[str, int]] = field(default_factory=dict)
    _warned_mixed: bool = False
    _epoch: int = 0     # bumped whenever memory is dropped (assign, fail)
    # gaps and leaks (auth_kappa/insights): state per partition, in its checkpoint; None:
    # off; Insights(keep_all=True): kept whole in memory, nothing persisted or restored
    insights: Insights | None = field(default_factory=lambda: Insights(keep_all=False))

    def __post_init__(self) -> None:
        self.topology.state_per_partition = True   # state deltas commit per partition
        self._writer = CheckpointWriter(self.store)
        if self._persisted():   # can the finest windows Redis keeps say it?
            finest = self.topology.finest
            self.insights.persist_last = \
                self.insights.rules.gap_after + 2 * finest.size > finest.keep("meter")

    def assign(self, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """Ownership (new, or again after a failure): forget memory, claim, and resume from
        the committed cut. Returns the offsets to seek to.

        Claiming comes first: a checkpoint of the previous owner (or our own, still in
        flight) either landed before the claim, and is read below, or is refused by it."""
        partitions = list(partitions)
        self._forget()
        self._generations = self.store.claim([f"{t}:{p}" for t, p in partitions])
        stored, highs, marks = self.store.offsets(), self.store.highs(), self.store.marks()
        self._next = {}
        for utility, wm in self.topology.watermarks.items():   # every utility: none kept
            wm.revoke(wm.partitions())                          # from a former assignment
            wm.assign([p for t, p in partitions if t == utility])
        seek = {}
        mine = {f"{t}:{p}" for t, p in partitions}
        lost = {n: (stored.get(n), o) for n, o in dict(self.store.acknowledged).items()
                if n in mine and stored.get(n, -1) < o}
        if lost:   # a restart from an AOF missing the last second, a lagging replica
            log.warning("Redis lost acknowledged checkpoints (partition: (offset it holds, "
                        "offset it acknowledged)): %s; resuming from what it holds", lost)
        self.store.acknowledged.clear()
        for utility, p in partitions:
            name = f"{utility}:{p}"
            if name in highs or name in marks:
                self.topology.watermarks[utility].restore(
                    p, highs.get(name, NO_WATERMARK), marks.get(name, NO_WATERMARK))
            if name in stored:
                seek[(utility, p)] = stored[name]
                self._next[name] = stored[name]
        self._sent = dict(self._next)
        self._sent_highs = {n: float(h) for n, h in highs.items()}
        self._sent_marks = {n: float(m) for n, m in marks.items()}
        newest = max(highs.values(), default=NO_WATERMARK)
        self.topology.loader = lambda slot: self.store.loader(slot, newest)
        if self._persisted():
            for utility, p in partitions:
                self.insights.restore(utility, p, **self.store.insight_state(utility, p))
                self._learn(utility, p)
        self._reopen(partitions)
        self.broken = None
        return seek

    def _persisted(self) -> bool:
        """Insight state lives in the store, per partition (else in memory, or off)."""
        return self.insights is not None and not self.insights.keep_all

    @property
    def epoch(self) -> int:
        """Bumped whenever memory is dropped (assign, fail): what was read before is stale."""
        return self._epoch

    def place(self, counts: dict[str, int]) -> None:
        """Each utility's topic partition count: stored for readers, and on a Redis
        Cluster where every meter must arrive (its keys live in its partition's slot)."""
        self.store.set_partitions(counts)
        if self.store.cluster:
            self.topology.placement.update(counts)

    def _learn(self, utility: str, partition: int) -> None:
        """What insights take from the partition's final windows Redis holds: the spikes'
        baseline (hourly), each meter's last reading and its quarter still filling
        (finest; see Insights.learn_finest)."""
        high = self.topology.watermarks[utility].high(partition)
        if high <= NO_WATERMARK:
            return
        hourly = next((s for s in self.topology.windows if s.size == HOUR), None)
        if utility in self.insights.spikes and hourly is not None:
            cut = self.topology.final_cut(hourly, high)
            self.insights.learn(utility, self.store.partition_windows(utility, HOUR,
                                                                      partition, cut))
        finest = self.topology.finest
        cut = self.topology.final_cut(finest, high)
        self.insights.learn_finest(utility, self.store.partition_windows(
            utility, finest.size, partition, cut), finest.size)

    def start_at(self, utility: str, partition: int, offset: int) -> None:
        """Where a partition with no committed offset starts (its log start): known, the
        partition counts as caught up as soon as nothing lies past it."""
        self._next.setdefault(f"{utility}:{partition}", offset)

    def _forget(self) -> None:
        """Drop everything held in memory; a checkpoint still in flight is left to land or
        be refused by the claim that follows (see assign)."""
        self._final, self._uncommitted, self._stats = {}, 0, {}
        self._cleanup = {}
        if self.insights is not None:
            self.insights.reset()
        self._writer.discard()
        self._epoch += 1      # what was prepared before is not sent after this
        self.topology.reset()

    def fail(self, exc: BaseException) -> None:
        """Memory is no longer a continuation of Redis: stop checkpointing until assign."""
        if self.broken is None:
            log.warning("store failure (%s: %s): dropping memory, resuming from the last "
                        "committed checkpoint", type(exc).__name__, exc)
        self.broken = exc
        self._forget()

    def _reopen(self, partitions: list[tuple[str, int]]) -> None:
        """Meter windows still open at the last checkpoint come back into memory, so they
        reach the `windows` topic when they close even if no reading touches them again
        (after a kill -9 or a rebalance they would otherwise never be published). They are
        found from the partition's meter set and its clock: for each size, the windows
        from the partition's final cut up to its high. (Reading the meter set also tells
        the store which meters it holds nothing of, at every partition.) First values
        of final windows that the last owner never got to delete go first."""
        for utility, p in partitions:
            k0, k1 = self.store.indexed_meters(utility, p)
            high = self.topology.watermarks[utility].high(p)
            if high <= NO_WATERMARK or not len(k0):
                continue
            self.store.drop_final_firsts(utility, p, k0, k1, self.topology.final_cut(
                self.topology.finest, high))
            for spec in self.topology.windows:
                top = int(high) // spec.size * spec.size
                first = max(self.topology.final_cut(spec, high), top - 8 * spec.size)
                starts = np.arange(first, top + 1, spec.size, dtype=np.int64)
                slot = (utility, "meter", spec.size)
                a, b = np.repeat(k0, len(starts)), np.repeat(k1, len(starts))
                ws = np.tile(starts, len(k0))
                init = self.topology.loader(slot)(a, b, ws) if len(ws) else None
                if init is not None and init["stored"].any():
                    held = init["stored"]
                    self.topology.tables[slot].adopt(a[held], b[held], ws[held],
                                                     {k: v[held] for k, v in init.items()}, p)

    def owns(self, utility: str, partition: int) -> bool:
        """Assigned here (by the last assign) and not lost to a failure since."""
        wm = self.topology.watermarks.get(utility)
        return self.broken is None and wm is not None and partition in wm.partitions()

    def next_offset(self, utility: str, partition: int) -> int | None:
        return self._next.get(f"{utility}:{partition}")

    def process(self, utility: str, messages: list[Message] | MessageBatch) -> StepResult:
        """One batch. Raises the store's error when a checkpoint failed (see fail)."""
        self._check()
        result = self.topology.process(utility, messages)
        for partition, nxt in next_offsets(messages).items():
            name = f"{utility}:{partition}"
            self._next[name] = max(self._next.get(name, 0), nxt)
        self.counters.add(result)
        self._count(result)
        if self.emit is not None:
            emit_rejected(self.emit, self.outputs, result)
        self._keep_final(utility, result.final)
        self._uncommitted += result.accepted
        if self.auto_checkpoint:
            self.checkpoint(wait=False)
        return result

    def end_of_input(self) -> None:
        """Finite input is over (the embedded engine, a test): the watermark goes to +inf,
        every window is final, no gap opens past a partition's last reading, and all of
        it is checkpointed before this returns."""
        self._check()
        final = self.topology.end_of_input()
        for utility in self.topology.watermarks:
            mine = {slot: rows for slot, rows in final.items() if slot[0] == utility}
            self._keep_final(utility, mine, ended=True)
        self.checkpoint()

    def tick(self) -> None:
        """Timer: idle partitions may have moved the watermark; due checkpoints happen."""
        self._check()
        for utility in self.topology.watermarks:
            self._keep_final(utility, self.topology.pop_final(utility))
        if self.auto_checkpoint:
            self.checkpoint(wait=False)

    def _keep_final(self, utility: str, final: dict[Slot, Rows], ended: bool = False
                    ) -> None:
        """Final windows go to the store with the next checkpoint, and feed the insights.
        Their side-output records (and the alerts) are emitted now: a minute's finality
        is one window per meter, and the broker acknowledges them while the loop reads on
        instead of while the checkpoint waits (KafkaSource flushes after each step)."""
        for slot, rows in final.items():
            if len(rows):
                self._final.setdefault(slot, []).append(rows)
        alerts = [] if self.insights is None else \
            self.insights.observe(self.topology, utility, final, ended)
        if self.emit is not None:
            self._emit(self.emit, final, alerts)

    def _check(self) -> None:
        if self.broken is not None:
            raise self.broken

    def _count(self, r: StepResult) -> None:
        """Per-utility increments for the stats hash, published with the checkpoint of the
        partition they came from (so they count each reading once, like the windows)."""
        counts: list[tuple[int, str, int]] = []
        for p, (accepted, duplicates) in r.by_partition.items():
            counts += [(p, "accepted", accepted), (p, "duplicates", duplicates)]
        parts, n = np.unique(r.late.partition, return_counts=True)
        counts += [(int(p), "late", int(k)) for p, k in zip(parts, n, strict=True)]
        counts += [(int(x.partition), "quarantined", 1) for x in r.rejects]
        counts += [(p, "conflicts", k) for p, k in r.conflicts_by_partition.items()]
        for p, name, k in counts:
            if k:
                mine = self._stats.setdefault(f"{r.utility}:{p}", {})
                key = f"{name}:{r.utility}"
                mine[key] = mine.get(key, 0) + k

    def checkpoint(self, wait: bool = True) -> int:
        """prepare() then submit(): for callers whose side outputs need no acknowledgement
        in between (tests, benchmarks, replay's catch-up). One waited for leaves nothing
        behind, no spread cleanup either."""
        if not wait and not self.due():
            return 0
        return self.submit(self.prepare(everything=wait), wait)

    def due(self) -> bool:
        """A checkpoint is due: the interval passed, or too much is uncommitted. While one
        is still being applied, the next waits: under load checkpoints grow and thin out
        instead of queueing, so each Redis write covers more readings (adaptive batching,
        bounded by the open windows)."""
        self._check()
        readings, final = self.max_ahead
        if self._writer.busy() and self._uncommitted < readings and self.held_final() < final:
            return False
        return time.monotonic() - self._last_commit >= self.commit_interval or \
            self._uncommitted >= self.max_uncommitted

    def until_due(self) -> float:
        """Seconds until the interval passes (0: it has; the checkpoint may still wait for
        the one in flight): how long a fetch may wait (KafkaSource._step)."""
        return max(0.0, self._last_commit + self.commit_interval - time.monotonic())

    def held_final(self) -> int:
        """Final windows held in memory for the next checkpoint."""
        return sum(len(rows) for parts in self._final.values() for rows in parts)

    def prepare(self, everything: bool = False) -> list[commits.Commit]:
        """Take what the next checkpoint writes out of memory: meter windows (absolute),
        state deltas, offsets, clocks and counters, one transaction per partition
        (runtime/commits.py); final windows went out as side outputs when they closed. A
        caller that needs side outputs acknowledged before the offsets that produced them
        are committed flushes between prepare and submit (KafkaSource does).
        `everything`: no final window's cleanup is left for later (see _settle)."""
        self._check()
        writes: dict[Slot, Rows] = {}
        for slot, table in self.topology.tables.items():
            if slot[1] == "meter":
                writes[slot] = Rows.concat([*self._settle(slot, everything),
                                            table.pop_dirty()])
            else:   # deltas: hand over, reset
                writes[slot] = Rows.concat([*self._final.get(slot, []), table.take(
                    np.ones(len(table), bool), remove=True)])
        clocks = {f"{t}:{p}": (wm.high(p), wm.mark(p))
                  for t, wm in self.topology.watermarks.items() for p in wm.partitions()}
        moved = {n: h for n, (h, _) in clocks.items()
                 if h > NO_WATERMARK and self._sent_highs.get(n) != h}
        marks = {n: m for n, (h, m) in clocks.items()
                 if m > h and self._sent_marks.get(n) != m}
        changed = {n: o for n, o in self._next.items() if self._sent.get(n) != o}
        split = commits.by_partition
        if not self.store.cluster and any(t.mixed for t in self.topology.tables.values()):
            split = commits.whole
            if not self._warned_mixed:
                self._warned_mixed = True
                log.warning("a meter's readings arrive on more than one partition: "
                            "checkpoints go back to one transaction (key messages by "
                            "service_id to avoid this)")
        todo = split(writes, changed, moved, self._generations, self._stats, marks)
        if self._persisted():
            self._insight_commands(todo)
        for commit in todo:
            commit.epoch = self._epoch
        for commit in todo:   # what Redis must still hold, or it lost a checkpoint
            commit.expected = {n: self._sent.get(n) for n in commit.partitions()}
        self._sent.update(changed)
        self._sent_highs.update(moved)
        self._sent_marks.update(marks)
        self._stats = {}
        self._final = {}
        self._uncommitted = 0
        self._last_commit = time.monotonic()
        return todo

    def _settle(self, slot: Slot, everything: bool) -> list[Rows]:
        """This checkpoint's final windows of a meter slot. Those the store already holds
        unchanged ("held") need no write but the deletion of their first values (finest
        size only; others need nothing). A minute's finality makes that one per meter at
        once, which stalled every partition's checkpoint for ~0.5 s at 75k meters, so it
        is spread: `cleanup_rate` a second since the last checkpoint, per slot (more
        once the backlog passes `cleanup_limit`). Cleanup dropped by a crash or a
        rebalance is left to retention's trim (trim_meters.lua sweeps first values too)."""
        out: list[Rows] = []
        queue = self._cleanup.get(slot, deque())   # oldest first, never copied whole
        for rows in self._final.get(slot, []):
            if rows.held is None or not rows.held.any():
                out.append(rows)
                continue
            if not rows.held.all():
                out.append(rows.select(~rows.held))
            if slot[2] == self.topology.finest.size:
                queue.append(rows.select(rows.held))
        waiting = sum(len(rows) for rows in queue)
        elapsed = time.monotonic() - self._last_commit
        take = waiting if everything else \
            max(int(self.cleanup_rate * elapsed), waiting - self.cleanup_limit)
        while take > 0 and queue:
            head = queue.popleft()
            if len(head) > take:
                queue.appendleft(head.slice(take, len(head)))
                head = head.slice(0, take)
            out.append(head)
            take -= len(head)
        if queue:
            self._cleanup[slot] = queue
        else:
            self._cleanup.pop(slot, None)
        return out

    def _emit(self, emit: Emit, final: dict[Slot, Rows], alerts: list[Alert]) -> None:
        """Final windows and alerts as records (the `windows` and `alerts` topics)."""
        emit_final(emit, self.outputs, final)
        for alert in alerts:   # at least once: (kind, service_id, start, end) is its id
            emit(self.outputs.alerts, alert.service_id.encode(), encode(alert).encode(),
                 [("kind", alert.kind.encode()),
                  ("event", b"open" if alert.is_open else b"close")])

    def _insight_commands(self, todo: list[commits.Commit]) -> None:
        """Each partition's changed insight state rides in that partition's transaction."""
        for utility in self.topology.watermarks:
            for p, changes in self.insights.changes(utility).items():
                name = f"{utility}:{p}"
                commit = next((c for c in todo if name in c.partitions()), None)
                if commit is None:
                    commit = commits.Commit(owner=name, generations={
                        name: self._generations[name]} if name in self._generations else {})
                    todo.append(commit)
                commit.extra += self.store.insight_commands(utility, p, changes)

    def submit(self, todo: list[commits.Commit], wait: bool = True) -> int:
        """Hand prepared transactions to the writer thread, in order, so Python keeps
        processing on one core while Redis applies them on the other. The previous
        transaction's failure is raised first, and leaves the runtime broken (see fail)."""
        self._check()
        self.wait_checkpoint()
        todo = [c for c in todo if c.epoch == self._epoch]   # memory dropped meanwhile
        self._writer.submit(todo)
        return self.wait_checkpoint() if wait else 0

    def inflight(self) -> Future | None:
        """The checkpoint being applied (None: none): an event loop awaits it
        (asyncio.wrap_future) instead of blocking in wait_checkpoint."""
        return self._writer.inflight()

    def wait_checkpoint(self) -> int:
        """Block until the last checkpoint is applied; its error (Fenced, RolledBack, a
        Redis error) breaks the runtime and is raised."""
        try:
            return self._writer.wait()
        except Exception as exc:
            self.fail(exc)
            raise
