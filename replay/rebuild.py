"""Rebuild (Kreps 2014): a new namespace v{N+1} from the archive, then Kafka from where
the archive ends, then one pointer switch for readers, then the old namespace goes.

The archive part writes what a live worker would have checkpointed at the archive's end:
final windows, the open ones (meter windows absolute with their seen bits, state
windows as totals), the live group's offsets = each partition's archive progress, and
the partition highs. So the catch-up (and later the workers) resume as after a restart.
On a Redis Cluster the new namespace first gets each utility's partition count, and
every write goes partition by partition (replay/placement.py).
"""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from auth_kappa.config import Config
from auth_kappa.errors import UserError
from auth_kappa.insights.stage import InsightRules, Insights
from auth_kappa.state.absolute import index_meters, load_meter_windows
from auth_kappa.state.clients import Client, sync_client
from auth_kappa.state.layout import followed
from auth_kappa.state.redis_store import RedisWindowStore
from auth_kappa.topology.processor import Slot, Topology
from auth_kappa.topology.window_table import Rows
from replay import placement
from replay.catchup import CatchUp, Say, catch_up_and_switch, live_partitions
from replay.feed import FeedStats, OnFinal, feed, take
from replay.plan import Plan
from replay.progress import ProgressBar

FLUSH_ROWS = 200_000
INSIGHT_ROWS = 2_000_000   # final windows between writes of the rebuild's insight state


@dataclass
class RebuildReport:
    old: str
    new: str
    windows: int = 0
    feed: FeedStats | None = None
    offsets: dict[str, int] = field(default_factory=dict)
    catch_up: CatchUp | None = None
    switched: bool = False


def next_namespace(current: str) -> str:
    """v1 -> v2, t42-v7 -> t42-v8, live -> live-v2."""
    m = re.match(r"^(.*?)(\d+)$", current)
    return f"{m.group(1)}{int(m.group(2)) + 1}" if m else f"{current}-v2"


def current_namespace(client: Client, config: Config) -> str:
    return config.namespace or followed(client.get(config.pointer))


class _FinalWriter:
    """Final windows as the feed closes them: kept by the retention rule, gathered into
    batches, each written by one thread while Python computes the next (in order, one
    batch at a time)."""

    def __init__(self, config: Config, new: RedisWindowStore, end: int) -> None:
        self.specs = {s.size: s for s in config.window_specs()}
        self.new = new
        self.end = end
        self.pending: dict[Slot, list[Rows]] = {}
        self.written = 0
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="rebuild-writer")
        self._inflight: list[Future] = []

    def keep(self, slot: Slot, rows: Rows) -> Rows:
        """Windows the retention rule keeps (WindowSpec.retention_cut) counted from the
        newest archived event time: exact for state keys; live would keep a few more of
        a meter that went quiet before the end (its own newest window is older)."""
        _, level, size = slot
        cut = self.specs[size].retention_cut(self.end // size * size, level)
        return take(rows, rows.window_start > cut)

    def on_final(self, final: dict[Slot, Rows]) -> None:
        for slot, rows in final.items():
            if len(rows):
                self.pending.setdefault(slot, []).append(self.keep(slot, rows))
        self.flush()

    def flush(self, force: bool = False) -> None:
        if not force and sum(len(r) for v in self.pending.values() for r in v) < FLUSH_ROWS:
            return
        batch = {slot: Rows.concat(parts) for slot, parts in self.pending.items()}
        self.pending.clear()
        if batch:
            self.wait()
            self._inflight.append(self._thread.submit(self._write, batch))

    def wait(self) -> None:
        while self._inflight:
            self.written += self._inflight.pop(0).result()

    def close(self) -> None:
        self._thread.shutdown(wait=True)

    def _write(self, batch: dict[Slot, Rows]) -> int:
        """Meters bulk-loaded (each final window is written once), states as deltas into
        the empty namespace, which makes them totals."""
        states = {slot: rows for slot, rows in batch.items() if slot[1] == "state"}
        n = placement.checkpoint(self.new, states) if states else 0
        for (u, level, size), rows in batch.items():
            if level == "meter":
                n += load_meter_windows(self.new, u, size, rows, self.specs[size].keep(level))
                if size == min(self.specs):
                    index_meters(self.new, u, rows)
        return n


def archive_end(plan: Plan) -> int:
    """The newest event time archived: what the live keys' retention cut counts back from."""
    return max((p.high for p in plan.progress.values() if p.high is not None),
               default=plan.last_hour_end or plan.start)


def positions(config: Config, plan: Plan, stats: FeedStats
              ) -> tuple[dict[str, int], dict[str, int]]:
    """The live group's offsets ("utility:partition" -> each partition's archive progress)
    and partition highs (the newer of the progress object's and what the feed saw)."""
    offsets: dict[str, int] = {}
    highs: dict[str, int] = {}

    def key(name: str) -> str:
        topic, p = name.rsplit(":", 1)
        return f"{config.utility_of(topic)}:{p}"

    for name, prog in plan.progress.items():
        offsets[key(name)] = prog.next_offset
        if prog.high is not None:
            highs[key(name)] = prog.high
    for name, high in stats.highs.items():
        highs[key(name)] = max(high, highs.get(key(name), high))
    return offsets, highs


def build(config: Config, objects, plan: Plan, new: RedisWindowStore,
          bar: ProgressBar | None = None) -> tuple[int, FeedStats]:
    """The archive into `new` (which must be empty): the checkpoint a worker would leave.
    Final windows are written as the feed closes them; what is still open at the end is
    one checkpoint, with the offsets and highs the live workers resume from."""
    out = _FinalWriter(config, new, archive_end(plan))
    topo = Topology.from_config(config, live=False)   # feed assigns partitions as they come
    placement.prepare(topo, new, new.partition_counts() if new.cluster else {})
    insights = _InsightWriter(config, topo, new) if config.insights else None
    try:
        stats = feed(objects, plan, topo, insights.wrap(out.on_final) if insights else
                     out.on_final, bar, finish=False)
        out.flush(force=True)
        out.wait()
    finally:
        out.close()
    open_rows = {slot: out.keep(slot, table.take(np.ones(len(table), bool), remove=True))
                 for slot, table in topo.tables.items()}
    offsets, highs = positions(config, plan, stats)
    written = out.written + placement.checkpoint(new, open_rows, offsets, highs)
    if insights is not None:
        insights.flush(highs)
    if not new.cluster:   # readers find per-partition keys (insights) by the stored count;
        known = new.partition_counts(refresh=True)   # workers store Kafka's as they start
        seen = {u: max(wm.partitions()) + 1 for u, wm in topo.watermarks.items()
                if wm.partitions() and u not in known}
        new.set_partitions(seen)
    return written, stats


class _InsightWriter:
    """Alerts, open days, past days and similar-homes sketches from the same final
    windows, written to the new namespace per source partition as a worker's checkpoints
    would (every INSIGHT_ROWS final windows, and at the end), so the catch-up and then the
    workers carry on from them after the switch."""

    def __init__(self, config: Config, topo: Topology, new: RedisWindowStore) -> None:
        self.topo, self.new = topo, new
        self.insights = Insights(InsightRules.from_config(config), keep_all=False)
        self.rows = 0

    def wrap(self, on_final: OnFinal) -> OnFinal:
        def both(final: dict[Slot, Rows]) -> None:
            on_final(final)
            for utility in {slot[0] for slot in final}:
                self.insights.observe(self.topo, utility, final)
            self.rows += sum(len(r) for r in final.values())
            if self.rows >= INSIGHT_ROWS:
                self.flush()
        return both

    def flush(self, highs: dict[str, int] | None = None) -> None:
        """Each partition's changes in a call of its own (on a cluster, in its slot; the
        partition's clock goes along, as in every checkpoint: `highs`, the final ones,
        else the feed's so far)."""
        self.rows = 0
        for utility, wm in self.topo.watermarks.items():
            for p, changes in self.insights.changes(utility).items():
                name = f"{utility}:{p}"
                high = highs[name] if highs and name in highs else wm.high(p)
                self.new.checkpoint({}, {}, {name: high},
                                    extra=self.new.insight_commands(utility, p, changes))


def rebuild(config: Config, objects, plan: Plan, say: Say, bar: ProgressBar | None = None,
            archive_only: bool = False, timeout: float = 120.0) -> RebuildReport:
    specs = config.window_specs()
    client = sync_client(config.redis_url, config.redis_cluster, socket_timeout=120)
    old_ns = current_namespace(client, config)
    new_ns = next_namespace(old_ns)
    old = RedisWindowStore(client, old_ns, specs, group=config.group)
    new = RedisWindowStore(client, new_ns, specs, group=config.group)
    if plan.end is not None and not archive_only:
        raise UserError("a rebuild replays up to where the archive ends, so it can continue "
                        "from Kafka there; leave out --to")
    if archive_only:
        members = live_partitions(config)
        if members:
            raise UserError(f"--archive-only cannot switch under running workers of group "
                            f"{config.group} ({len(members)} partitions): they would re-read "
                            "Kafka from the start; stop them or rebuild without it")
    elif not plan.progress:
        raise UserError("the archive has no progress objects, so there is no Kafka position "
                        "to continue from (simulated history?); use --archive-only")
    counts = placement.partition_counts(   # a cluster's: where every key goes
        config, [u for u in plan.utilities if plan.objects.get(u)], [old],
        kafka_first=True) if new.cluster else {}
    report = RebuildReport(old_ns, new_ns)
    dropped = new.drop_namespace()   # leftovers of an earlier, interrupted rebuild
    if dropped:
        say(f"removed {dropped:,} keys of an unfinished {new_ns}")
    new.set_partitions(counts)   # (on a cluster) before anything is written
    say(f"rebuilding {new_ns} from {objects.url} (live: {old_ns})")
    try:
        report.windows, report.feed = build(config, objects, plan, new, bar)
        if bar is not None:
            bar.close()
        report.offsets = new.offsets()
        if archive_only:
            client.set(config.pointer, new_ns)
            say(f"pointer {config.pointer} -> {new_ns}")
            n = old.drop_namespace()
            say(f"old namespace {old_ns} removed ({n:,} keys)")
        else:
            report.catch_up = asyncio.run(catch_up_and_switch(config, new, old, say, timeout))
        report.switched = True
    except BaseException:
        if (client.get(config.pointer) or b"").decode() != new_ns:
            new.drop_namespace()   # never leave half a namespace behind
        raise
    return report
