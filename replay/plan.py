"""What a replay will read: the archive objects of the range, their bytes and events."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from auth_kappa.archive import layout
from auth_kappa.archive.layout import ObjectRef
from auth_kappa.archive.parquet_io import rows_from_footer
from auth_kappa.archive.rolls import Progress
from auth_kappa.archive.store import ObjectStore
from auth_kappa.wording import plural

FOOTER = 64 * 1024


@dataclass
class Plan:
    start: int
    end: int | None                     # None: up to where the archive ends
    utilities: tuple[str, ...]
    objects: dict[str, list[ObjectRef]] = field(default_factory=dict)   # utility -> objects
    # "<topic>:<partition>" -> archive progress (where the archive ends), when known
    progress: dict[str, Progress] = field(default_factory=dict)
    events: int | None = None           # rows in the listed objects (edge hours in full)

    @property
    def files(self) -> int:
        return sum(len(v) for v in self.objects.values())

    @property
    def bytes(self) -> int:
        return sum(o.size for v in self.objects.values() for o in v)

    def hours(self, utility: str) -> list[int]:
        return sorted({o.hour_ts for o in self.objects.get(utility, [])})

    @property
    def last_hour_end(self) -> int | None:
        hours = [o.hour_ts for v in self.objects.values() for o in v]
        return max(hours) + 3600 if hours else None

    def limit(self, topic: str, partition: int) -> int | None:
        """Rows at or past this offset are not committed archive yet (a pending roll)."""
        p = self.progress.get(f"{topic}:{partition}")
        return p.next_offset if p else None

    def describe(self) -> str:
        end = _iso(self.end) if self.end is not None else "end of archive"
        lines = [f"replay plan {_iso(self.start)} .. {end}: {plural(self.files, 'file')}, "
                 f"{self.bytes / 1e6:,.1f} MB"
                 + (f", {plural(self.events, 'event')}" if self.events is not None else "")]
        for u in self.utilities:
            objs = self.objects.get(u, [])
            lines.append(f"  {u}: {plural(len(objs), 'file')}, "
                         f"{sum(o.size for o in objs) / 1e6:,.1f} MB in "
                         f"{plural(len(self.hours(u)), 'archive hour')}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        """The plan for scripts (`--dry-run --json`): range, files, bytes, events, hours."""
        return {"start": _iso(self.start), "end": _iso(self.end) if self.end is not None
                else None, "files": self.files, "bytes": self.bytes, "events": self.events,
                "utilities": {u: {"files": len(self.objects.get(u, [])),
                                  "bytes": sum(o.size for o in self.objects.get(u, [])),
                                  "hours": [_iso(h) for h in self.hours(u)]}
                              for u in self.utilities}}


def _iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


async def make_plan(store: ObjectStore, start: int, end: int | None,
                    utilities: tuple[str, ...], topics: dict[str, str],
                    count_events: bool = False) -> Plan:
    """List the objects whose hour overlaps [start, end) for the given topics.

    Progress is read before the objects are listed: the archiver uploads a roll's objects
    before it moves the progress past them, so every offset below a progress read first
    is in an object listed after. (Listed the other way round, a roll landing in between
    moved the progress past objects the plan never saw, and a rebuild's catch-up then
    started after readings nobody read: they were lost.) A partition with no progress
    yet, of a topic that has some, is left out: its first roll landed after the read."""
    plan = Plan(start, end, utilities)
    for key, _ in await store.list(f"{layout.PROGRESS}/"):
        data = await store.get(key)
        topic, part = key[len(layout.PROGRESS) + 1:].rsplit("/", 1)
        if data is not None and topic in topics.values():
            plan.progress[f"{topic}:{part.removesuffix('.json')}"] = Progress.from_bytes(data)
    for u in utilities:
        if end is not None and end - start <= 14 * 86400:
            days = sorted({layout.hour_path(layout.ARCHIVE, u, h).rsplit("hour=", 1)[0]
                           for h in layout.hours(start, end)})
            listed = [x for got in await asyncio.gather(*(store.list(d) for d in days))
                      for x in got]
        else:
            listed = await store.list(f"{layout.ARCHIVE}/utility={u}/")
        refs = []
        for key, size in listed:
            ref = layout.parse_key(key, size)
            if ref is None or ref.topic != topics[u]:
                continue
            if ref.hour_ts + 3600 <= start or (end is not None and ref.hour_ts >= end):
                continue
            refs.append(ref)
        plan.objects[u] = sorted(refs, key=lambda r: (r.hour_ts, r.partition, r.first))
    archived = {name.rsplit(":", 1)[0] for name in plan.progress}   # live-archived topics
    for u, refs in plan.objects.items():   # drop what lies wholly past the committed progress
        plan.objects[u] = [r for r in refs if (lim := plan.limit(r.topic, r.partition)) is None
                           and r.topic not in archived or lim is not None and r.first < lim]
    if count_events:
        sem = asyncio.Semaphore(16)

        async def rows(ref: ObjectRef) -> int:
            async with sem:
                n = rows_from_footer(await store.tail(ref.key, FOOTER))
                if n is None:
                    from auth_kappa.archive.parquet_io import from_parquet

                    n = from_parquet(await store.get(ref.key), columns=["end_ts"]).num_rows
                return n
        counts = await asyncio.gather(*(rows(r) for v in plan.objects.values() for r in v))
        plan.events = int(sum(counts))
    return plan
