"""`auth-kappa simulate`: a deterministic smart-meter fleet, into files or Kafka.

Examples:
  auth-kappa simulate --meters 1000 --duration 10m --seed 7 --out out/sim
  auth-kappa simulate --meters 5000 --duration 1h --to kafka --pace 10x
  auth-kappa simulate --meters 100 --duration 2h --profile realistic --format json \\
      --late-fraction 0.01 --duplicate-fraction 0.005 --malformed-fraction 0.001
  auth-kappa simulate --meters 20000 --duration 10m --to kafka --frame-size 500
  auth-kappa simulate --meters 1000 --duration 2d --to s3            # history into the archive
  auth-kappa simulate --meters 1000 --duration 1d --to archive out/archive
  auth-kappa simulate --meters 1000 --duration 3d --profile realistic \\
      --inject leak=10,gap=10,spike=10                               # anomalies, see manifest
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from auth_kappa.config import Config, parse_duration
from auth_kappa.errors import ServiceUnavailable, UserError
from auth_kappa.wording import plural
from simulators.encoding import FORMATS
from simulators.progress import Progress
from simulators.runner import simulate
from simulators.sinks import Sink
from simulators.spec import (
    DEFAULT_START,
    PROFILES,
    FaultSpec,
    SimSpec,
    parse_inject,
    parse_start,
)

SINKS: tuple[str, ...] = ("files", "kafka", "s3", "archive")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate", help="generate meter readings into files or Kafka (deterministic)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--meters", type=int, default=1000, help="fleet size (default 1000)")
    p.add_argument("--duration", default="10m", help="simulated time, e.g. 10m, 2h, 1d (default 10m)")
    p.add_argument("--seed", type=int, default=0, help="same seed, same data (default 0)")
    p.add_argument("--profile", choices=PROFILES, default="seed",
                   help="seed: triangular like the original; realistic: daily/weekly/seasonal")
    p.add_argument("--format", choices=FORMATS, default="csv",
                   help="csv (the seed format, no header), json (jsonl) or parquet")
    p.add_argument("--to", nargs="+", default=["files"], metavar="SINK",
                   help="files (default), kafka, s3 (the archive bucket, AUTH_S3_*) or "
                        "archive DIR (the archive layout in a local folder)")
    p.add_argument("--out", default="out/sim",
                   help="directory for readings (files), registry, ground truth and manifest "
                        "(default out/sim)")
    p.add_argument("--start", default=DEFAULT_START,
                   help=f"simulated start, ISO 8601 UTC or epoch seconds (default {DEFAULT_START})")
    p.add_argument("--heartbeat", default="5s", help="interval between readings (default 5s)")
    p.add_argument("--pace", default="max", help="realtime, Nx (e.g. 10x) or max (default max)")
    g = p.add_argument_group("faults (fractions of readings per utility, exclusive)")
    g.add_argument("--late-fraction", type=float, default=0.0,
                   help="fraction of readings sent late")
    g.add_argument("--late-delay", default="90s", help="event-time delay of late readings")
    g.add_argument("--duplicate-fraction", type=float, default=0.0,
                   help="fraction of readings sent twice")
    g.add_argument("--duplicate-delay", default="30s", help="how much later a duplicate is resent")
    g.add_argument("--malformed-fraction", type=float, default=0.0,
                   help="fraction of messages that are malformed")
    g.add_argument("--inject", default=None, metavar="KIND=N,...",
                   help="meters with an anomaly, e.g. leak=5,gap=10,spike=5 (leaks on water, "
                        "spikes on electricity or gas, gaps on any utility; one per meter; "
                        "listed in the manifest's anomalies)")
    k = p.add_argument_group("kafka")
    k.add_argument("--kafka", default=None, help="bootstrap servers (default AUTH_KAFKA or 127.0.0.1:9092)")
    k.add_argument("--topic-prefix", default=None,
                   help="prefix for the electricity/gas/water topics (default: "
                        "AUTH_TOPIC_PREFIX, else none)")
    k.add_argument("--partitions", type=int, default=None,
                   help="partitions when a topic must be created (default AUTH_PARTITIONS or 4)")
    k.add_argument("--compression", default=None,
                   help="Kafka batch compression: none, lz4, zstd, snappy, gzip (default lz4; "
                        "with --frame-size none, the frame bodies are lz4 already)")
    k.add_argument("--frame-size", type=int, default=None, metavar="N",
                   help="send frames of up to N readings per message (Arrow IPC, one partition "
                        "each, no key; malformed messages stay single); default: one reading "
                        "per message")
    p.add_argument("--quiet", action="store_true", help="no progress or summary on stderr")
    p.set_defaults(func=run)


def spec_from_args(args: argparse.Namespace) -> SimSpec:
    """Validated SimSpec from parsed flags; UserError names the bad flag."""
    heartbeat = parse_duration(args.heartbeat, name="--heartbeat")
    if heartbeat != int(heartbeat):
        raise UserError(f"--heartbeat must be whole seconds, got {args.heartbeat!r}")
    faults = FaultSpec(
        late_fraction=args.late_fraction,
        late_delay=parse_duration(args.late_delay, name="--late-delay"),
        duplicate_fraction=args.duplicate_fraction,
        duplicate_delay=parse_duration(args.duplicate_delay, name="--duplicate-delay"),
        malformed_fraction=args.malformed_fraction)
    return SimSpec(meters=args.meters, seed=args.seed, start=parse_start(args.start),
                   duration=parse_duration(args.duration, name="--duration"),
                   heartbeat=int(heartbeat), profile=args.profile, faults=faults,
                   inject=None if args.inject is None else parse_inject(args.inject))


def make_sink(args: argparse.Namespace) -> Sink:
    """The sink named by --to."""
    if args.to in ("s3", "archive"):
        from auth_kappa.archive.targets import open_store
        from simulators.sinks.archive import ArchiveSink

        config = Config.load(partitions=args.partitions, topic_prefix=args.topic_prefix)
        store = open_store("s3" if args.to == "s3" else args.archive_dir, config)
        return ArchiveSink(store, config.topic_prefix, config.partitions)
    if args.to == "kafka":
        from simulators.sinks.kafka import KafkaSink

        config = Config.load(kafka=args.kafka, partitions=args.partitions,
                             topic_prefix=args.topic_prefix)
        common = {"topic_prefix": config.topic_prefix, "partitions": config.partitions,
                  "compression": args.compression or ("none" if args.frame_size else "lz4")}
        if args.frame_size is not None:
            from simulators.sinks.frames import FrameKafkaSink

            return FrameKafkaSink(config.kafka, args.frame_size, **common)
        return KafkaSink(config.kafka, **common)
    from simulators.sinks.files import FileSink

    return FileSink(Path(args.out))


def writable_folder(path: Path, flag: str) -> None:
    """Create the folder now, or fail in one line before any data is generated."""
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path} is a file; name a folder (it is created if missing)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{flag} {path}: cannot create the folder ({exc.strerror or exc}); "
                        "name a folder you can write") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {path}: the folder is not writable; name a folder you can "
                        "write")


def _normalise_to(args: argparse.Namespace) -> None:
    """--to SINK, or --to archive DIR."""
    to = [args.to] if isinstance(args.to, str) else list(args.to)
    if to[0] not in SINKS:
        raise UserError(f"--to {to[0]!r}: choose one of {', '.join(SINKS)}")
    if to[0] == "archive":
        if len(to) != 2:
            raise UserError("--to archive needs a folder: --to archive DIR")
        args.archive_dir = to[1]
    elif len(to) != 1:
        raise UserError(f"--to {to[0]} takes no argument (got {' '.join(to[1:])})")
    args.to = to[0]


def run(args: argparse.Namespace) -> int:
    _normalise_to(args)
    spec = spec_from_args(args)
    from simulators.pacing import parse_pace

    parse_pace(args.pace)  # reject a bad --pace before any output is written
    if args.to == "kafka" and args.format == "parquet":
        raise UserError("--to kafka sends csv or json messages; use --format csv or json")
    if args.frame_size is not None:
        if args.to != "kafka":
            raise UserError("--frame-size applies only to --to kafka (files keep one reading "
                            "per line)")
        from simulators.sinks.frames import check_frame_size

        check_frame_size(args.frame_size)
    out = Path(args.out)
    writable_folder(out, "--out")
    if args.to == "archive":
        writable_folder(Path(args.archive_dir), "--to archive")
    sink = make_sink(args)
    progress = Progress(0, enabled=not args.quiet)
    manifest = simulate(spec, sink, out, fmt=args.format, pace=args.pace, progress=progress)
    counts = manifest["utilities"]
    messages = sum(c["messages"] for c in counts.values())
    readings = sum(c["readings"] for c in counts.values())
    facts = manifest["sink"]
    if facts["to"] == "kafka":
        where = f"topics {', '.join(facts['topics'].values())} at {facts['bootstrap']}"
    elif facts["to"] == "archive":
        where = (f"{facts['archive']} ({plural(facts['objects'], 'object')}, "
                 f"{facts['parquet_bytes'] / 1e6:,.1f} MB Parquet)")
    else:
        where = f"{out}/{{{','.join(facts['files'].values())}}}"
    sent = plural(messages, "message")
    if "frames" in facts:
        f = facts["frames"]
        sent += (f" in {sum(f['frames'].values()):,} frames of up to {f['frame_size']:,} "
                 f"readings + {sum(f['single_messages'].values()):,} single messages")
    if facts.get("delivery_errors"):
        raise ServiceUnavailable(
            f"{facts['delivery_errors']:,} of {facts['produced']:,} messages were not delivered "
            f"to Kafka (first: {facts['first_error']}); {out}/ground_truth.parquet and "
            "manifest.json describe what was meant to be sent")
    progress.summary(f"{plural(readings, 'reading')} as {sent} to {where}; "
                     f"manifest {out / 'manifest.json'}")
    return 0
