"""The live runtime: topology + Redis store + side outputs, independent of the Kafka client.

The Faust app (and the benchmark's plain consumer) feed it batches and do what it asks:
seek to the offsets it returns on assignment, send the side-output records it emits.
Exactly-once effect comes from one rule: state and the offsets that produced it are
written in the same Redis transaction, and a new owner starts from those offsets.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from auth_kappa.runtime import commits
from auth_kappa.runtime.counters import Counters
from auth_kappa.state.redis_store import RedisWindowStore
from auth_kappa.state.window_table import Rows
from auth_kappa.topology.decode import Message
from auth_kappa.topology.frames import write_ipc
from auth_kappa.topology.processor import Slot, StepResult, Topology, rows_frame
from auth_kappa.topology.watermark import NO_WATERMARK

log = logging.getLogger("auth_kappa.live")
MAX_QUARANTINE_BYTES = 64 * 1024  # below any broker's message limit
WINDOWS_PER_MESSAGE = 4096         # ~200 KB per final-windows message
# emit(topic, key, value, headers): the runtime's only way out besides Redis
Emit = Callable[[str, bytes | None, bytes, list[tuple[str, bytes]]], None]


@dataclass
class Outputs:
    late: str = "late"
    quarantine: str = "quarantine"
    windows: str = "windows"


@dataclass
class LiveRuntime:
    topology: Topology
    store: RedisWindowStore
    emit: Emit
    outputs: Outputs = field(default_factory=Outputs)
    commit_interval: float = 0.25
    max_uncommitted: int = 250_000   # readings: bounds a checkpoint's size under load
    counters: Counters = field(default_factory=Counters)
    _uncommitted: int = 0
    _generations: dict[str, int] = field(default_factory=dict)
    _inflight: Future | None = None
    _writer: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="checkpoint"))
    _next: dict[str, int] = field(default_factory=dict)        # "topic:p" -> next offset
    _sent: dict[str, int] = field(default_factory=dict)        # offsets handed to Redis
    _final: dict[Slot, list[Rows]] = field(default_factory=dict)
    _last_commit: float = field(default_factory=time.monotonic)
    # "gas:3" -> {"accepted:gas": n}: counters since the last checkpoint, per partition
    _stats: dict[str, dict[str, int]] = field(default_factory=dict)
    _warned_mixed: bool = False

    def __post_init__(self) -> None:
        self.topology.state_per_partition = True   # state deltas commit per partition

    def assign(self, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """New ownership: forget in-memory windows, claim, resume from the committed cut.

        The caller checkpoints on revocation, before the group hands partitions around.
        """
        partitions = list(partitions)
        self._final, self._uncommitted, self._stats = {}, 0, {}
        for table in self.topology.tables.values():
            table.take(np.ones(len(table), bool), remove=True)
            table.mixed = False
        stored, highs = self.store.offsets(), self.store.highs()
        self._next = {}
        for topic in {t for t, _ in partitions}:
            wm = self.topology.watermarks[topic]
            wm.revoke(wm.partitions())
            wm.assign([p for t, p in partitions if t == topic])
        seek = {}
        for topic, p in partitions:
            name = f"{topic}:{p}"
            if name in highs:
                self.topology.watermarks[topic].restore(p, highs[name])
            if name in stored:
                seek[(topic, p)] = stored[name]
                self._next[name] = stored[name]
        self._sent = dict(self._next)
        self._generations = self.store.claim([f"{t}:{p}" for t, p in partitions])
        newest = max(highs.values(), default=NO_WATERMARK)
        self.topology.loader = lambda slot: self.store.loader(slot, newest)
        self._reopen(partitions)
        return seek

    def _reopen(self, partitions: list[tuple[str, int]]) -> None:
        """Meter windows still open at the last checkpoint come back into memory, so they
        reach the `windows` topic when they close even if no reading touches them again
        (after a kill -9 or a rebalance they would otherwise never be published). They are
        found from the partition's meter set and the restored watermark: for each size,
        the windows from the final cut up to the partition's high."""
        for utility, p in partitions:
            wm = self.topology.watermarks[utility]
            high = wm.high(p)
            if high <= NO_WATERMARK:
                continue
            k0, k1 = self.store.indexed_meters(utility, p)
            if not len(k0):
                continue
            for spec in self.topology.windows:
                top = int(high) // spec.size * spec.size
                first = max(self.topology.final_cut(spec, wm.current()), top - 8 * spec.size)
                starts = np.arange(first, top + 1, spec.size, dtype=np.int64)
                slot = (utility, "meter", spec.size)
                a, b = np.repeat(k0, len(starts)), np.repeat(k1, len(starts))
                ws = np.tile(starts, len(k0))
                init = self.topology.loader(slot)(a, b, ws) if len(ws) else None
                if init is not None and init["stored"].any():
                    held = init["stored"]
                    self.topology.tables[slot].adopt(a[held], b[held], ws[held],
                                                     {k: v[held] for k, v in init.items()}, p)

    def next_offset(self, utility: str, partition: int) -> int | None:
        return self._next.get(f"{utility}:{partition}")

    def process(self, topic: str, messages: list[Message]) -> StepResult:
        result = self.topology.process(topic, messages)
        for m in messages:
            name = f"{topic}:{m.partition}"
            self._next[name] = max(self._next.get(name, 0), m.offset + 1)
        self.counters.add(result)
        self._count(result)
        self._side_outputs(result)
        for slot, rows in result.final.items():
            if len(rows):
                self._final.setdefault(slot, []).append(rows)
        self._uncommitted += result.accepted
        if time.monotonic() - self._last_commit >= self.commit_interval or \
                self._uncommitted >= self.max_uncommitted:
            self.checkpoint(wait=False)
        return result

    def tick(self) -> None:
        """Timer: idle partitions may have moved the watermark; due checkpoints happen."""
        for utility in self.topology.watermarks:
            for slot, rows in self.topology.pop_final(utility).items():
                if len(rows):
                    self._final.setdefault(slot, []).append(rows)
        if time.monotonic() - self._last_commit >= self.commit_interval:
            self.checkpoint(wait=False)

    def _count(self, r: StepResult) -> None:
        """Per-utility increments for the stats hash, published with the checkpoint of the
        partition they came from (so they count each reading once, like the windows)."""
        counts: list[tuple[int, str, int]] = []
        for p, (accepted, duplicates) in r.by_partition.items():
            counts += [(p, "accepted", accepted), (p, "duplicates", duplicates)]
        parts, n = np.unique(r.late.partition, return_counts=True)
        counts += [(int(p), "late", int(k)) for p, k in zip(parts, n, strict=True)]
        counts += [(int(x.partition), "quarantined", 1) for x in r.rejects]
        for p, name, k in counts:
            if k:
                mine = self._stats.setdefault(f"{r.utility}:{p}", {})
                key = f"{name}:{r.utility}"
                mine[key] = mine.get(key, 0) + k

    def _side_outputs(self, result: StepResult) -> None:
        late = result.late
        for i in range(len(late)):
            raw = late.raw[i] if late.raw[i] is not None else _json_row(late, i)
            self.emit(self.outputs.late, bytes(late.service_id[i]), raw,
                      [("source", f"{result.utility}:{late.partition[i]}:{late.offset[i]}".encode())])
        for r in result.rejects:
            headers = [("reason", r.reason.encode()),
                       ("source", f"{r.utility}:{r.partition}:{r.offset}".encode())]
            raw = r.raw
            if len(raw) > MAX_QUARANTINE_BYTES:  # the source topic and archive keep it whole
                headers.append(("truncated_from", str(len(raw)).encode()))
                raw = raw[:MAX_QUARANTINE_BYTES]
            self.emit(self.outputs.quarantine, None, raw, headers)

    def checkpoint(self, wait: bool = True) -> int:
        """Meter windows (absolute), state deltas and offsets: one Redis transaction per
        partition (runtime/commits.py), applied in order.

        wait=False (the hot path) hands the transaction to a writer thread and returns,
        so Python keeps processing on one core while Redis applies it on the other.
        Transactions stay in order. While one is still being applied, a non-waiting call
        is skipped: under load checkpoints grow and thin out instead of queueing, so each
        Redis write covers more readings (adaptive batching, bounded by the open windows).
        """
        if not wait and self._inflight is not None and not self._inflight.done() and \
                self._uncommitted < 4 * self.max_uncommitted:
            return 0
        writes: dict[Slot, Rows] = {}
        for slot, table in self.topology.tables.items():
            level = slot[1]
            rows = table.pop_dirty() if level == "meter" else \
                table.take(np.ones(len(table), bool), remove=True)  # deltas: hand over, reset
            writes[slot] = Rows.concat([*self._final.get(slot, []), rows])
        highs = {f"{t}:{p}": wm.high(p) for t, wm in self.topology.watermarks.items()
                 for p in wm.partitions() if wm.high(p) > NO_WATERMARK}
        changed = {n: o for n, o in self._next.items() if self._sent.get(n) != o}
        split = commits.by_partition
        if any(t.mixed for t in self.topology.tables.values()):
            split = commits.whole
            if not self._warned_mixed:
                self._warned_mixed = True
                log.warning("a meter's readings arrive on more than one partition: "
                            "checkpoints go back to one transaction (key messages by "
                            "service_id to avoid this)")
        todo = split(writes, changed, highs, self._generations, self._stats)
        self._sent.update(changed)
        self.wait_checkpoint()
        self._inflight = self._writer.submit(self._apply, todo)
        self._stats = {}
        for utility, level, size in writes:
            finals = self._final.get((utility, level, size))
            if level == "meter" and finals:
                frame = rows_frame(utility, level, size, Rows.concat(finals))
                # many small messages, each well under any broker's 1 MB default limit
                for lo in range(0, len(frame), WINDOWS_PER_MESSAGE):
                    part = frame.iloc[lo:lo + WINDOWS_PER_MESSAGE]
                    self.emit(self.outputs.windows, utility.encode(),
                              encode_frame_windows(part), [("size", str(size).encode())])
        self._final = {}
        self._uncommitted = 0
        self._last_commit = time.monotonic()
        return self.wait_checkpoint() if wait else 0

    def _apply(self, todo: list[commits.Commit]) -> int:
        return sum(c.apply(self.store) for c in todo)

    def wait_checkpoint(self) -> int:
        """Block until the last checkpoint is applied; re-raises its error (e.g. Fenced)."""
        inflight, self._inflight = self._inflight, None
        return inflight.result() if inflight is not None else 0


def encode_frame_windows(frame: pd.DataFrame) -> bytes:
    """Final windows for the `windows` topic: read back with frames.read_ipc(...)."""
    return write_ipc(pa.Table.from_pandas(frame, preserve_index=False))


def _json_row(late, i: int) -> bytes:
    row = late.take(np.array([i])).to_pandas().iloc[0]
    keys = ("service_id", "user_name", "type", "start_ts", "state", "consumption", "end_ts")
    return json.dumps({k: (row[k].item() if hasattr(row[k], "item") else row[k])
                       for k in keys}).encode()
