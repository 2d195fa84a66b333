"""`auth-kappa plan`: partitions, workers, Redis, Kafka and S3 for a fleet, from measured costs.

Examples:
  auth-kappa plan                                   # 8M meters x 3 utilities, 5 s heartbeat
  auth-kappa plan --meters 500000 --frames --redis-node-memory 16GiB
  auth-kappa plan --costs benchmarks/unit_costs.json --json

The unit costs (CPU seconds and bytes per reading) are measured by
benchmarks/bench_unit_costs.py (`make bench-costs`); the package ships the last
measurement. Every figure is printed with the formula and inputs it came from.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from auth_kappa.capacity import (
    DAY,
    MODES,
    Inputs,
    Plan,
    check_costs,
    format_bytes,
    parse_bytes,
    plan,
)
from auth_kappa.errors import UserError
from auth_kappa.units import parse_duration

LABELS: dict[str, str] = {
    "readings_per_second": "readings per second",
    "worker_cores": "worker cores",
    "worker_processes": "worker processes",
    "partitions_per_topic": "partitions per topic",
    "redis_cores": "Redis cores",
    "redis_memory": "Redis memory",
    "redis_primaries": "Redis primaries",
    "redis_nodes": "Redis nodes",
    "kafka_ingress": "Kafka ingress",
    "kafka_disk": "Kafka disk",
    "kafka_brokers": "Kafka brokers",
    "s3_bytes_per_day": "S3 per day",
}
NOT_MEASURED = ("not measured yet: Redis Cluster beyond 3 primaries (the plan spreads Redis "
                "CPU evenly, but a primary's share follows the partition tags {utility:p} "
                "its slots hold: docs/capacity.md), replicated Kafka (bytes are one replica x "
                "--replication) and broker CPU; --broker-write, --broker-disk and the fills "
                "are assumptions: use your own.")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="capacity plan for a fleet from measured unit costs",
                       description=__doc__)
    f = p.add_argument_group("fleet")
    f.add_argument("--meters", type=int, default=8_000_000, help="meters")
    f.add_argument("--utilities", type=int, default=3, help="utilities per meter (topics)")
    f.add_argument("--heartbeat", default="5s", help="interval between a meter's readings")
    mode = f.add_mutually_exclusive_group()
    mode.add_argument("--frames", dest="modes", action="store_const", const=("frames",),
                      help="only the plan for frames (Arrow, many readings per message; "
                           "default: both plans)")
    mode.add_argument("--single", dest="modes", action="store_const", const=("single",),
                      help="only the plan for one reading per message")
    w = p.add_argument_group("workers")
    w.add_argument("--cores-per-worker", type=float, default=1.0,
                   help="cores one worker process uses (a Faust worker is one Python process)")
    w.add_argument("--utilisation", type=float, default=0.7,
                   help="highest CPU busy fraction to plan for (workers and Redis)")
    w.add_argument("--growth", type=float, default=2.0,
                   help="partitions per worker, room to add workers without repartitioning")
    r = p.add_argument_group("redis")
    r.add_argument("--redis-node-memory", default="64GiB", help="memory of one Redis node")
    r.add_argument("--redis-max-fill", type=float, default=0.5,
                   help="fraction of a node's memory for data (the rest: fork, fragmentation)")
    r.add_argument("--redis-replicas", type=int, default=1, help="replicas per primary")
    r.add_argument("--redis-bytes-per-meter", default=None,
                   help="window state per meter and utility (default: the measured figure, "
                        "1m windows for 2 h + 1h windows for 7 d)")
    k = p.add_argument_group("kafka")
    k.add_argument("--kafka-retention", default="1d",
                   help="how long brokers keep messages: long enough to ride out an S3 or "
                        "archiver outage (history is in the archive; a rebuild reads it, then "
                        "Kafka from where it ends)")
    k.add_argument("--replication", type=int, default=3, help="replicas per partition")
    k.add_argument("--broker-write", default="100MB",
                   help="bytes per second one broker should write (assumption)")
    k.add_argument("--broker-disk", default="4TiB", help="disk of one broker")
    k.add_argument("--disk-fill", type=float, default=0.7, help="fraction of a disk to fill")
    p.add_argument("--costs", default=None, metavar="FILE",
                   help="unit costs JSON (default: the measurement shipped with the package; "
                        "benchmarks/unit_costs.json after make bench-costs)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def load_costs(path: str | None) -> dict[str, Any]:
    """The shipped measurement, or a JSON file written by benchmarks/bench_unit_costs.py."""
    if path is None:
        from auth_kappa.capacity_defaults import UNIT_COSTS

        return dict(UNIT_COSTS)
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"--costs {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"--costs {path}: cannot read it ({exc})") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"--costs {path}: not JSON ({exc.msg} at line {exc.lineno})") from None


def inputs_from_args(args: argparse.Namespace) -> Inputs:
    """Validated Inputs; UserError names the bad flag."""
    per_meter = None
    if args.redis_bytes_per_meter is not None:
        per_meter = parse_bytes(args.redis_bytes_per_meter, name="--redis-bytes-per-meter")
    return Inputs(
        meters=args.meters, utilities=args.utilities,
        heartbeat_s=parse_duration(args.heartbeat, name="--heartbeat"),
        cores_per_worker=args.cores_per_worker, utilisation=args.utilisation,
        growth=args.growth,
        redis_node_memory=parse_bytes(args.redis_node_memory, name="--redis-node-memory"),
        redis_max_fill=args.redis_max_fill, redis_replicas=args.redis_replicas,
        redis_bytes_per_meter_utility=per_meter,
        kafka_retention_s=parse_duration(args.kafka_retention, name="--kafka-retention"),
        replication=args.replication,
        broker_write=parse_bytes(args.broker_write, name="--broker-write"),
        broker_disk=parse_bytes(args.broker_disk, name="--broker-disk"),
        disk_fill=args.disk_fill)


def _value(value: float, unit: str) -> str:
    if unit == "bytes":
        return format_bytes(value)
    if unit == "bytes/s":
        return f"{format_bytes(value)}/s"
    if unit == "bytes/day":
        return f"{format_bytes(value)}/day"
    if unit == "cores":
        return f"{value:,.1f} cores"
    return f"{value:,.0f} {unit}"


def render(inputs: Inputs, costs: dict[str, Any], plans: list[Plan]) -> str:
    """The plan as text: one line per figure, its formula beside it."""
    lines = [f"Capacity plan: {inputs.meters:,} meters x {inputs.utilities} utilities every "
             f"{inputs.heartbeat_s:g} s = {plans[0].rate:,.0f} readings/s",
             f"Unit costs: {costs.get('source', 'given file')}, measured "
             f"{costs.get('measured', '?')} ({costs.get('machine', 'machine not recorded')})"]
    for p in plans:
        c = costs[p.mode]
        how = (f"frames of {costs.get('frame_size', '?')} readings" if p.mode == "frames"
               else "one reading per message")
        bare = c.get("worker_cpu_s_per_million_without_archiver")
        lines += ["", f"{p.mode} ({how}): {c['worker_cpu_s_per_million']:g} worker CPU s"
                      + (f" ({bare:g} of them without the archiver)" if bare else "") + " and "
                      f"{c['redis_cpu_s_per_million']:g} Redis CPU s per 1M readings, "
                      f"{c['kafka_all_bytes_per_reading']:g} Kafka B and "
                      f"{c['archive_bytes_per_reading']:g} archive B per reading"]
        for f in p.figures[1:]:
            lines.append(f"  {LABELS[f.name]:<21} {_value(f.value, f.unit):>16}  = {f.formula}")
    lines += ["", NOT_MEASURED]
    return "\n".join(lines)


def as_json(inputs: Inputs, costs: dict[str, Any], plans: list[Plan]) -> str:
    body = {"inputs": {**asdict(inputs), "kafka_retention_days": inputs.kafka_retention_s / DAY},
            "unit_costs": {k: v for k, v in costs.items() if k != "runs"},
            "plans": {p.mode: {f.name: f.as_dict() for f in p.figures} for p in plans},
            "not_measured": NOT_MEASURED}
    return json.dumps(body, indent=2)


def run(args: argparse.Namespace) -> int:
    inputs = inputs_from_args(args)
    costs = load_costs(args.costs)
    modes = args.modes or MODES
    check_costs(costs, modes)
    plans = [plan(inputs, costs, m) for m in modes]
    print(as_json(inputs, costs, plans) if args.json else render(inputs, costs, plans))
    return 0
