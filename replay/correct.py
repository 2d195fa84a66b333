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
the ones late readings changed are replaced (replay/gap_fix.py); so are the meters' past
days, what their bills add up (replay/day_fix.py).
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
from auth_kappa.state.layout import watermarks_and_newest
from auth_kappa.state.redis_store import RedisWindowStore
from auth_kappa.topology.keys import uuid_text
from auth_kappa.topology.processor import Slot, Topology
from auth_kappa.topology.schema import STATES
from auth_kappa.topology.window_table import Rows
from auth_kappa.topology.windows import is_final
from replay import placement
from replay.day_fix import DayFix, fix_days
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
    days: DayFix | None = None     # meters' past days (bills) they changed
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
    return watermarks_and_newest(store.highs())


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
    _note_coverage(config, plan, live, report, force)
    fixer = _Corrector(config, plan, live, report, dry_run_writes)   # reads the live clocks
    topo = Topology.from_config(config, live=False)   # feed assigns partitions as they come
    if live.cluster:
        counts = placement.partition_counts(
            config, [u for u in plan.utilities if plan.objects.get(u)], [live],
            kafka_first=False)
        live.set_partitions(counts)   # where readers find what is written (kept if stored)
        placement.prepare(topo, live, counts)
    gaps = GapRecompute(config, topo, plan.start, plan.end) if config.insights else None
    fixer.gaps = gaps
    report.feed = feed(objects, plan, topo, fixer.on_final, bar, finish=True)
    if gaps is not None and not dry_run_writes:
        report.gaps = gaps.apply(live, fixer.low)
        report.days = fix_days(gaps.insights, live, plan.start, plan.end, config.grace,
                               fixer.low)
    return report


def _note_coverage(config: Config, plan: Plan, live: RedisWindowStore,
                   report: CorrectionReport, force: bool) -> None:
    """Refuse (unless forced) when the archive lags the stream: the correction would
    remove readings the archiver has not uploaded yet."""
    if not plan.progress:
        report.notes.append("the archive has no progress objects (simulated history or an "
                            "embedded folder): coverage of the live stream not checked")
        return
    behind = check_coverage(config, plan, live)
    if behind and not force:
        raise UserError(f"the archive is behind the stream for {', '.join(behind[:4])}"
                        f"{' ...' if len(behind) > 4 else ''}; wait for the archiver "
                        "(it uploads every AUTH_ARCHIVE_ROLL_SECONDS) or pass --force")
    if behind:
        report.notes.append(f"forced although the archive is behind on {len(behind)} "
                            "partitions")


class _Corrector:
    """Takes the replay's final windows slot by slot: selects the ones to correct, compares
    them with Redis, counts the differences in the report and writes the touched ones."""

    def __init__(self, config: Config, plan: Plan, live: RedisWindowStore,
                 report: CorrectionReport, dry_run_writes: bool) -> None:
        self.config, self.plan, self.live, self.report = config, plan, live, report
        self.dry_run_writes = dry_run_writes
        self.gaps: GapRecompute | None = None   # closed gaps and leaks to find again
        self.specs = {s.size: s for s in config.window_specs()}
        self.low, self.high = live_watermarks(live)
        self.fallback = plan.last_hour_end or plan.end
        self.state_cache: dict[Slot, dict[str, bytes]] = {}

    def on_final(self, final: dict[Slot, Rows]) -> None:
        for slot, rows in final.items():
            if len(rows):
                self.correct_slot(slot, rows)
        if self.gaps is not None:
            self.gaps.observe(final)

    def correct_slot(self, slot: Slot, rows: Rows) -> None:
        rep = self.report.slots.setdefault(slot, SlotReport())
        sel = self._select(slot, rows, rep)
        if not len(sel):
            return
        shares = None
        if slot[1] == "state" and self.live.cluster:
            shares, sel = sel, state_totals(sel)   # compare the windows readers see
        before = self._before(slot, sel)
        touched = self._count(slot, sel, before, rep)
        write = take(sel, touched)
        if not len(write) or self.dry_run_writes:
            return
        self._write(slot, write, before["count"][touched] == 0, shares)

    def _select(self, slot: Slot, rows: Rows, rep: SlotReport) -> Rows:
        """Inside the range, final live and inside the retention (the rest is counted)."""
        u, level, size = slot
        ws = rows.window_start
        inside = (ws >= self.plan.start) & (ws + size <= self.plan.end)
        final = is_final(ws, size, self.config.grace, self.low.get(u, math.inf))
        newest = int(self.high.get(u, self.fallback)) // size * size   # the newest live window
        fresh = ws > self.specs[size].retention_cut(newest, level)
        rep.skipped_open += int((inside & ~final).sum())
        rep.skipped_retention += int((inside & final & ~fresh).sum())
        return take(rows, inside & final & fresh)

    def _before(self, slot: Slot, sel: Rows) -> np.ndarray:
        """The live values of the selected windows (state windows read once per slot)."""
        u, level, size = slot
        if level == "meter":
            return _meter_values(self.live, u, size, sel)
        cached = self.state_cache.get(slot)
        if cached is None:
            cached = self.state_cache[slot] = read_state_windows(self.live, u, size)
        return codec.decode_values([cached.get(f) for f in state_fields(sel)], 0)

    def _count(self, slot: Slot, sel: Rows, before: np.ndarray, rep: SlotReport) -> np.ndarray:
        """Counts added, changed and unchanged windows; returns the touched ones."""
        u, level, size = slot
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
        if level == "state" and size == min(self.specs):
            codes = sel.k0.astype(np.int64)
            for code in np.unique(codes[touched]):
                m = touched & (codes == code)
                acc = self.report.per_state.setdefault((u, STATES[code]), [0, 0.0])
                acc[0] += int((sel.count - old_count)[m].sum())
                acc[1] += float((sel.sum - old_sum)[m].sum())
        return touched

    def _write(self, slot: Slot, write: Rows, added: np.ndarray, shares: Rows | None) -> None:
        u, level, size = slot
        if level == "meter":
            write.new = added   # only added windows need a TTL and a retention trim
            placement.checkpoint(self.live, {slot: write})
            return
        keep = self.specs[size].keep(level)
        if shares is not None:   # every partition's share of the windows to fix
            fix = set(state_fields(write))
            redo = np.array([f in fix for f in state_fields(shares)], bool)
            set_state_windows(self.live, u, size, take(shares, redo), keep)
        else:
            set_state_windows(self.live, u, size, write, keep)
        cached = self.state_cache[slot]
        vals = codec.values(write, 0)
        w = vals.dtype.itemsize
        raw = vals.tobytes()
        for i, f in enumerate(state_fields(write)):
            cached[f] = raw[i * w:(i + 1) * w]


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
