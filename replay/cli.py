"""`auth-kappa replay correct|rebuild`: the archive through the same topology, into Redis.

Examples:
  auth-kappa replay correct --from 2026-03-02T00:00:00Z --to 2026-03-03T00:00:00Z
  auth-kappa replay correct --from 2026-03-02T00:00:00Z --to 2026-03-02T06:00:00Z --utility gas
  auth-kappa replay rebuild --from 2026-03-01T00:00:00Z            # v{N+1}, Kafka, switch
  auth-kappa replay rebuild --from 2026-03-01T00:00:00Z --archive out/archive --archive-only
  auth-kappa replay correct --from ... --to ... --dry-run          # files, bytes, events
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from auth_kappa.archive.layout import ARCHIVE
from auth_kappa.archive.store import StoreUnavailable
from auth_kappa.archive.targets import open_store
from auth_kappa.config import Config
from auth_kappa.errors import ServiceUnavailable, UserError
from auth_kappa.topology.schema import UTILITIES
from auth_kappa.wording import plural


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="replay the archive: correct a range, or rebuild and "
                                      "switch", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = p.add_subparsers(dest="mode", metavar="MODE")
    modes.required = True
    c = modes.add_parser("correct", help="fix the final windows of [--from, --to) in place",
                         description="Re-run the archive of [--from, --to) through the topology\n"
                                     "and fix the final windows in the live namespace.")
    _common(c, to_help="end of the range (exclusive), ISO 8601 UTC or epoch s; required")
    c.add_argument("--force", action="store_true",
                   help="correct even when the archive is behind the stream")
    c.set_defaults(func=run)
    r = modes.add_parser("rebuild", help="new namespace v{N+1} from the archive, continue "
                                         "from Kafka, switch readers",
                         description="Build namespace v{N+1} from the archive, continue from\n"
                                     "Kafka where the archive ends, then switch readers to it.")
    _common(r, to_help="end of the range (exclusive; only with --archive-only); default: the "
                       "archive's end")
    r.add_argument("--archive-only", action="store_true",
                   help="rebuild without continuing from Kafka (simulated history, no "
                        "workers running)")
    r.add_argument("--timeout", type=float, default=120.0,
                   help="seconds to wait for workers to freeze and to move")
    r.set_defaults(func=run)


def _common(p: argparse.ArgumentParser, to_help: str) -> None:
    p.add_argument("--from", dest="start", required=True,
                   help="start of the range, ISO 8601 UTC (2026-03-02T00:00:00Z) or epoch s")
    p.add_argument("--to", dest="end", default=None, help=to_help)
    p.add_argument("--utility", action="append", default=None, choices=UTILITIES,
                   help="only this utility (repeatable; default: all three)")
    p.add_argument("--archive", default="s3",
                   help="s3 (the AUTH_S3_* bucket) or a local archive folder")
    p.add_argument("--dry-run", action="store_true", help="print the plan: files, bytes, "
                                                          "events; write nothing")
    p.add_argument("--json", action="store_true",
                   help="print the report (or with --dry-run the plan) as JSON on stdout; "
                        "the text goes to stderr")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def parse_time(text: str, flag: str) -> int:
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"{flag} {text!r}: use ISO 8601, e.g. 2026-03-02T00:00:00Z") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())


def run(args: argparse.Namespace) -> int:
    from auth_kappa.cli.preflight import check_kafka, check_redis
    from replay.plan import make_plan
    from replay.progress import ProgressBar

    config = Config.load()
    start = parse_time(args.start, "--from")
    end = parse_time(args.end, "--to") if args.end else None
    if end is not None and end <= start:
        raise UserError("--to must be after --from")
    if args.mode == "correct" and end is None:
        raise UserError("replay correct needs --to (the end of the range to correct)")
    utilities = tuple(u for u in UTILITIES if u in (args.utility or UTILITIES))
    _check_archive_folder(args.archive)
    if not args.dry_run:   # fail in one line now, not after planning (or in a client's retries)
        check_redis(config.redis_url, cluster=config.redis_cluster)
        if args.mode == "rebuild":
            check_kafka(config.kafka)
    objects = open_store(args.archive, config)
    topics = {u: config.prefixed(u) for u in utilities}
    async def planned():
        try:
            return await make_plan(objects, start, end, utilities, topics, count_events=True)
        finally:
            await objects.close()
    try:
        plan = asyncio.run(planned())
    except StoreUnavailable as exc:
        raise ServiceUnavailable(f"cannot read the archive: {exc}; run `auth-kappa stack up` "
                                 "or set AUTH_S3_ENDPOINT / AUTH_S3_BUCKET") from None
    text_out = sys.stdout if args.dry_run and not args.json else sys.stderr
    print(plan.describe(), file=text_out)
    if args.dry_run and args.json:
        print(json.dumps(plan.as_dict(), indent=2))
    if not plan.files:
        raise UserError(f"no archive objects for {', '.join(utilities)} in that range at "
                        f"{objects.url}; check --from/--to and --archive")
    if args.dry_run:
        return 0
    bar = ProgressBar(plan.events, label=args.mode, enabled=not args.quiet)
    t0 = time.perf_counter()
    if args.mode == "correct":
        from replay.correct import correct
        from replay.report import correction_dict, correction_text

        live = _live_store(config)
        report = correct(config, objects, plan, live, bar, force=args.force)
        bar.close()
        print(correction_text(report, time.perf_counter() - t0),
              file=sys.stderr if args.json else sys.stdout)
        if args.json:
            print(json.dumps(correction_dict(report), indent=2))
        return 0
    from replay.rebuild import rebuild

    rep = rebuild(config, objects, plan, say=lambda s: print(f"rebuild: {s}", file=sys.stderr),
                  bar=bar, archive_only=args.archive_only, timeout=args.timeout)
    secs = time.perf_counter() - t0
    f = rep.feed
    out = sys.stderr if args.json else sys.stdout
    print(f"rebuilt {rep.new} from {plural(f.rows, 'archived reading')} ({f.rows / secs:,.0f}/s "
          f"overall), {plural(rep.windows, 'window')}; live namespace was {rep.old}, now "
          f"{rep.new}", file=out)
    if rep.catch_up is not None:
        c = rep.catch_up
        print(f"  caught up {plural(c.consumed, 'Kafka message')}; workers frozen "
              f"{c.freeze_seconds:.1f} s on {plural(len(c.froze), 'partition')}; "
              f"old namespace {'removed' if c.moved else 'kept'}", file=out)
    if args.json:
        print(json.dumps({"old": rep.old, "new": rep.new, "windows": rep.windows,
                          "rows": f.rows, "offsets": rep.offsets}, indent=2))
    return 0


def _check_archive_folder(archive: str) -> None:
    """A local --archive must be a folder holding an archive: a typo is not '0 files'."""
    if archive in ("", "s3"):
        return
    folder = Path(archive)
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise UserError(f"--archive {archive} {what}; give the folder that `auth-kappa "
                        "simulate --to archive DIR` wrote, or --archive s3")
    if not (folder / ARCHIVE).is_dir():
        raise UserError(f"--archive {archive} holds no archive (no {ARCHIVE}/ folder inside); "
                        "give the folder that `auth-kappa simulate --to archive DIR` wrote")


def _live_store(config: Config):
    from auth_kappa.state.redis_store import RedisWindowStore

    return RedisWindowStore.from_config(config)
