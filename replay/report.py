"""What a replay did, as text for people (the CLI prints it) and as a dict for scripts."""

from __future__ import annotations

import time

from auth_kappa.topology.windows import WindowSpec
from auth_kappa.wording import plural
from replay.correct import CorrectionReport


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _label(size: int) -> str:
    return WindowSpec(size, 1).label


def correction_text(r: CorrectionReport, seconds: float) -> str:
    f = r.feed
    lines = [f"correction of {_iso(r.start)} .. {_iso(r.end)} in namespace {r.namespace}: "
             f"{plural(r.changed, 'window')} changed, {r.added:,} added"]
    if f is not None:
        lines.append(f"  replayed {plural(f.rows, 'archived reading')} ({f.accepted:,} counted, "
                     f"{f.duplicates:,} duplicates) in {seconds:.1f} s "
                     f"({f.rows / max(seconds, 1e-9):,.0f}/s)")
    lines.append("  utility      level  window  changed    added  unchanged  open  old  "
                 "count change  sum change")
    for (u, level, size), s in sorted(r.slots.items()):
        lines.append(f"  {u:<12} {level:<6} {_label(size):>6} {s.changed:>8,} {s.added:>8,} "
                     f"{s.unchanged:>10,} {s.skipped_open:>5,} {s.skipped_retention:>4,} "
                     f"{s.count_delta:>+13,} {s.sum_delta:>+11.6g}")
    if r.per_state:
        lines.append("  total change per utility and state (finest window, state level):")
        for u in sorted({u for u, _ in r.per_state}):
            items = sorted(((s, v) for (uu, s), v in r.per_state.items() if uu == u),
                           key=lambda x: -abs(x[1][1]))
            total_c = sum(v[0] for _, v in items)
            total_s = sum(v[1] for _, v in items)
            lines.append(f"    {u}: {total_c:+,} readings, {total_s:+.6g} in total; " +
                         ", ".join(f"{s} {v[0]:+,}/{v[1]:+.4g}" for s, v in items[:12]) +
                         (" ..." if len(items) > 12 else ""))
    else:
        lines.append("  no state totals changed")
    if r.gaps is not None:
        g = r.gaps
        lines.append(f"  alerts (gaps, leaks): {g.removed:,} changed by readings the archive "
                     f"holds (removed), {g.added:,} added (what they are now), "
                     f"{g.kept:,} unchanged")
    if r.days is not None:
        d = r.days
        lines.append(f"  meter days (bills): {d.changed:,} changed, {d.added:,} added, "
                     f"{d.unchanged:,} unchanged, {d.skipped_open:,} still open live")
    lines += [f"  note: {n}" for n in r.notes]
    return "\n".join(lines)


def correction_dict(r: CorrectionReport) -> dict:
    return {"namespace": r.namespace, "start": r.start, "end": r.end, "changed": r.changed,
            "added": r.added,
            "slots": {f"{u}:{level}:{size}": vars(s) for (u, level, size), s in r.slots.items()},
            "per_state": {f"{u}:{s}": {"count": v[0], "sum": v[1]}
                          for (u, s), v in r.per_state.items()},
            "rows": r.feed.rows if r.feed else 0, "notes": r.notes,
            "gaps": None if r.gaps is None else
            {"removed": r.gaps.removed, "added": r.gaps.added, "kept": r.gaps.kept},
            "days": None if r.days is None else vars(r.days)}
