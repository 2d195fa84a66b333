"""Correction: recompute the final windows of [from, to) from the archive and write them
over the live results, absolute and idempotent (a second run changes nothing).

Which windows are written:
- wholly inside [from, to) (a window straddling an edge would miss readings outside it);
- final in the live namespace (window_end + grace <= the lowest committed partition
  high of that utility): an open window is still the stream's to write;
- inside the retention of its level, by the store's rule (WindowSpec.retention_cut)
  from the newest live window (older ones are not kept in Redis at all: the archive is
  their home);
- and only where the value differs (count, min, max, or sum beyond 1e-9 relative):
  float sums in another order are not a correction.
Closed gap and leak alerts of the range are found again from the same final windows, and
the ones late readings changed are replaced (replay/gap_fix.py).
The archive must cover what the stream has counted (archive progress >= live offsets for
every partition), or a correction could remove readings the archiver has not uploaded
yet; it refuses otherwise, unless forced.
On a Redis Cluster (replay/placement.py) meter windows are written partition by
partition, and a state window is compared as readers see it (its partitions' shares
summed) but written as every partition's share.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from auth_kappa.config import Config
from auth_kappa.errors import UserError
from auth_kappa.state import codec
from auth_kappa.state.absolute import (
    read_state_windows,
    set_state_windows,
    state_fields,
    state_totals,
)
from auth_kappa.state.layout import partition_clocks, utility_clocks
from auth_kappa.state.redis_store import RedisWindowStore
from auth_kappa.topology.keys import uuid_text
from auth_kappa.topology.processor import Slot, Topology
from auth_kappa.topology.schema import STATES
from auth_kappa.topology.window_table import Rows
from auth_kappa.topology.windows import is_final
from replay import placement
from replay.feed import FeedStats, feed, take
from replay.gap_fix import GapFix, GapRecompute
from replay.plan import Plan
from replay.progress import ProgressBar

REL_TOL = 1e-9


@dataclass
class SlotReport:
    changed: int = 0
    added: int = 0
    unchanged: int = 0
    skipped_open: int = 0          # in range, but still open in the live namespace
    skipped_retention: int = 0     # in range, but older than what Redis keeps
    count_delta: int = 0
    sum_delta: float = 0.0


@dataclass
class CorrectionReport:
    namespace: str
    start: int
    end: int
    slots: dict[Slot, SlotReport] = field(default_factory=dict)
    per_state: dict[tuple[str, str], list] = field(default_factory=dict)  # -> [count, sum]
    feed: FeedStats | None = None
    gaps: GapFix | None = None     # closed gaps and leaks the archive's readings changed
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return sum(r.changed for r in self.slots.values())

    @property
    def added(self) -> int:
        return sum(r.added for r in self.slots.values())


def live_watermarks(store: RedisWindowStore) -> tuple[dict[str, float], dict[str, float]]:
    """Per utility: (lowest committed partition clock, highest). Clocks only, not idle
    marks: a meter window is final by its partition's clock, which a mark never moves."""
    bounds = utility_clocks(partition_clocks(store.highs()))
    return ({u: lo for u, (lo, _) in bounds.items()}, {u: hi for u, (_, hi) in bounds.items()})


def check_coverage(config: Config, plan: Plan, store: RedisWindowStore) -> list[str]:
    """Partitions where the stream has counted messages the archive does not hold yet."""
    behind = []
    for name, offset in store.offsets().items():
        utility, p = name.rsplit(":", 1)
        if utility not in plan.utilities:
            continue
        prog = plan.progress.get(f"{config.prefixed(utility)}:{p}")
        if prog is None or prog.next_offset < offset:
            have = prog.next_offset if prog else 0
            behind.append(f"{utility}:{p} (stream at {offset}, archive at {have})")
    return behind


def correct(config: Config, objects, plan: Plan, live: RedisWindowStore,
            bar: ProgressBar | None = None, force: bool = False,
            dry_run_writes: bool = False) -> CorrectionReport:
    if plan.end is None:
        raise UserError("replay correct needs --to (the end of the range to correct)")
    report = CorrectionReport(live.namespace, plan.start, plan.end)
    if plan.progress:
        behind = check_coverage(config, plan, live)
        if behind and not force:
            raise UserError(f"the archive is behind the stream for {', '.join(behind[:4])}"
                            f"{' ...' if len(behind) > 4 else ''}; wait for the archiver "
                            "(it uploads every AUTH_ARCHIVE_ROLL_SECONDS) or pass --force")
        if behind:
            report.notes.append(f"forced although the archive is behind on {len(behind)} "
                                "partitions")
    else:
        report.notes.append("the archive has no progress objects (simulated history or an "
                            "embedded folder): coverage of the live stream not checked")
    specs = {s.size: s for s in config.window_specs()}
    low, high = live_watermarks(live)
    fallback = plan.last_hour_end or plan.end
    state_cache: dict[Slot, dict[str, bytes]] = {}

    def on_final(final: dict[Slot, Rows]) -> None:
        for slot, rows in final.items():
            if len(rows):
                _correct_slot(slot, rows)
        if gaps is not None:
            gaps.observe(final)

    def _correct_slot(slot: Slot, rows: Rows) -> None:
        u, level, size = slot
        rep = report.slots.setdefault(slot, SlotReport())
        ws = rows.window_start
        inside = (ws >= plan.start) & (ws + size <= plan.end)
        final = is_final(ws, size, config.grace, low.get(u, math.inf))
        newest = int(high.get(u, fallback)) // size * size   # the live keys' newest window
        fresh = ws > specs[size].retention_cut(newest, level)
        rep.skipped_open += int((inside & ~final).sum())
        rep.skipped_retention += int((inside & final & ~fresh).sum())
        sel = take(rows, inside & final & fresh)
        if not len(sel):
            return
        shares = None
        if level == "meter":
            before = _meter_values(live, u, size, sel)
        else:
            if live.cluster:   # compare the windows readers see: the shares summed
                shares, sel = sel, state_totals(sel)
            cached = state_cache.get(slot)
            if cached is None:
                cached = state_cache[slot] = read_state_windows(live, u, size)
            before = codec.decode_values([cached.get(f) for f in state_fields(sel)], 0)
        added = before["count"] == 0
        with np.errstate(invalid="ignore"):
            same = (before["count"] == sel.count) & (before["min"] == sel.min) & \
                (before["max"] == sel.max) & \
                (np.abs(before["sum"] - sel.sum) <= REL_TOL * np.maximum(1.0, np.abs(sel.sum)))
        changed = ~added & ~same
        rep.added += int(added.sum())
        rep.changed += int(changed.sum())
        rep.unchanged += int((~added & same).sum())
        old_sum = np.where(added, 0.0, before["sum"])
        old_count = np.where(added, 0, before["count"])
        touched = added | changed
        rep.count_delta += int((sel.count - old_count)[touched].sum())
        rep.sum_delta += float((sel.sum - old_sum)[touched].sum())
        if level == "state" and size == min(specs):
            codes = sel.k0.astype(np.int64)
            for code in np.unique(codes[touched]):
                m = touched & (codes == code)
                acc = report.per_state.setdefault((u, STATES[code]), [0, 0.0])
                acc[0] += int((sel.count - old_count)[m].sum())
                acc[1] += float((sel.sum - old_sum)[m].sum())
        write = take(sel, touched)
        if not len(write) or dry_run_writes:
            return
        if level == "meter":
            write.new = added[touched]   # only added windows need a TTL and a retention trim
            placement.checkpoint(live, {slot: write})
        else:
            if shares is not None:   # every partition's share of the windows to fix
                fix = set(state_fields(write))
                redo = np.array([f in fix for f in state_fields(shares)], bool)
                set_state_windows(live, u, size, take(shares, redo), specs[size].keep(level))
            else:
                set_state_windows(live, u, size, write, specs[size].keep(level))
            cached = state_cache[slot]
            vals = codec.values(write, 0)
            w = vals.dtype.itemsize
            raw = vals.tobytes()
            for i, f in enumerate(state_fields(write)):
                cached[f] = raw[i * w:(i + 1) * w]

    topo = Topology.from_config(config, live=False)   # feed assigns partitions as they come
    if live.cluster:
        counts = placement.partition_counts(
            config, [u for u in plan.utilities if plan.objects.get(u)], [live],
            kafka_first=False)
        live.set_partitions(counts)   # where readers find what is written (kept if stored)
        placement.prepare(topo, live, counts)
    gaps = GapRecompute(config, topo, plan.start, plan.end) if config.insights else None
    report.feed = feed(objects, plan, topo, on_final, bar, finish=True)
    if gaps is not None and not dry_run_writes:
        report.gaps = gaps.apply(live, low)
    return report


def _meter_values(store: RedisWindowStore, utility: str, size: int, rows: Rows) -> np.ndarray:
    sids = uuid_text(rows.k0, rows.k1)
    # a cluster's keys by the partition the meter's readings came on (the one its
    # partitioner gives: others were quarantined); one Redis ignores it
    parts = [p if p >= 0 else None for p in rows.part.tolist()] \
        if store.cluster and rows.part is not None else [None] * len(rows)
    out = []
    for lo in range(0, len(rows), 20_000):
        pipe = store.client.pipeline(transaction=False)
        for sid, w, p in zip(sids[lo:lo + 20_000], rows.window_start[lo:lo + 20_000],
                             parts[lo:lo + 20_000], strict=True):
            pipe.hget(store.meter_key(sid, utility, size, p), str(int(w)))
        out.append(codec.decode_values(pipe.execute(), store.words(size)))
    return np.concatenate(out) if out else codec.decode_values([], store.words(size))
