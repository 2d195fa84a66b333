"""Capacity formulas: from measured unit costs to partitions, cores, Redis, Kafka and S3.

Pure arithmetic, no I/O, so a plan can be re-run with anyone's own numbers
(`auth-kappa plan`). Every figure comes back as a Figure that carries the formula with its
inputs written in, because a capacity number nobody can trace is a guess.
The unit costs come from benchmarks/bench_unit_costs.py (CPU seconds and bytes per
reading) and benchmarks/bench_state_size.py (Redis bytes per meter).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from auth_kappa.errors import UserError

MODES: tuple[str, ...] = ("frames", "single")
COST_FIELDS: tuple[str, ...] = ("worker_cpu_s_per_million", "redis_cpu_s_per_million",
                                "kafka_bytes_per_reading", "kafka_all_bytes_per_reading",
                                "archive_bytes_per_reading")
DAY = 86_400.0

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]?i?B?)?\s*$", re.IGNORECASE)
_POWER = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5}


def parse_bytes(text: str | int | float, *, name: str = "size") -> float:
    """Bytes from '64GiB' (1024-based), '100MB' (1000-based), '4TiB' or a bare number."""
    if isinstance(text, int | float):
        return float(text)
    m = _SIZE.match(str(text))
    if not m:
        raise UserError(f"{name}: cannot read {text!r} as a size; use e.g. 64GiB, 100MB, 4TiB")
    unit = (m.group(2) or "").upper()
    base = 1024 if "I" in unit else 1000
    return float(m.group(1)) * base ** _POWER[unit[:1] if unit[:1] in _POWER else ""]


def readings_per_second(meters: int, utilities: int, heartbeat_s: float) -> float:
    """Every meter sends one reading per utility per heartbeat."""
    return meters * utilities / heartbeat_s


def cores_needed(rate: float, cpu_s_per_million: float, utilisation: float) -> float:
    """Cores busy at `rate` readings/s, sized so none runs above `utilisation`."""
    return rate * cpu_s_per_million / 1e6 / utilisation


def worker_processes(cores: float, cores_per_worker: float) -> int:
    """A Faust worker is one Python process: it uses about one core however many it has."""
    return max(1, math.ceil(cores / cores_per_worker - 1e-9))


def partitions_per_topic(workers: int, utilities: int, growth: float) -> int:
    """Each utility is a topic; the group shares all of their partitions, so
    utilities x partitions >= workers x growth (room to add workers without repartitioning,
    which would move meters between partitions)."""
    return max(1, math.ceil(workers * growth / utilities - 1e-9))


def redis_memory(meters: int, utilities: int, bytes_per_meter_utility: float) -> float:
    """Window state at retention: one 1m and one 1h hash per meter and utility (per-state
    hashes are ~1 MB per state and window size: negligible next to it)."""
    return meters * utilities * bytes_per_meter_utility


def redis_primaries(cores: float, memory: float, node_memory: float, max_fill: float,
                    cores_per_primary: float = 1.0) -> tuple[int, int, int]:
    """(by CPU, by memory, primaries): Redis runs commands on one core per primary, and a
    node should hold at most `max_fill` of its memory (fork for AOF rewrite, fragmentation)."""
    by_cpu = max(1, math.ceil(cores / cores_per_primary - 1e-9))
    by_mem = max(1, math.ceil(memory / (node_memory * max_fill) - 1e-9))
    return by_cpu, by_mem, max(by_cpu, by_mem)


def kafka_disk(rate: float, bytes_per_reading: float, retention_s: float,
               replication: int) -> float:
    """Bytes on the brokers' disks: what arrives in `retention_s`, on every replica."""
    return rate * bytes_per_reading * retention_s * replication


def kafka_brokers(ingress: float, replication: int, broker_write: float, disk: float,
                  broker_disk: float, disk_fill: float) -> tuple[int, int, int]:
    """(by write throughput, by disk, brokers): every replica writes the ingress, a broker
    should write at most `broker_write` bytes/s and fill its disk to `disk_fill`; never
    fewer brokers than replicas."""
    by_write = math.ceil(ingress * replication / broker_write - 1e-9)
    by_disk = math.ceil(disk / (broker_disk * disk_fill) - 1e-9)
    return by_write, by_disk, max(replication, by_write, by_disk)


def s3_per_day(rate: float, archive_bytes_per_reading: float) -> float:
    """Parquet bytes the archive adds per day (every reading, kept until you delete it)."""
    return rate * archive_bytes_per_reading * DAY


@dataclass(frozen=True)
class Inputs:
    """A fleet and the sizing choices the formulas need (CLI defaults in plan_cmd)."""

    meters: int = 8_000_000
    utilities: int = 3
    heartbeat_s: float = 5.0
    cores_per_worker: float = 1.0
    utilisation: float = 0.7
    growth: float = 2.0
    redis_node_memory: float = 64 * 2**30
    redis_max_fill: float = 0.5
    redis_replicas: int = 1
    redis_bytes_per_meter_utility: float | None = None   # None: the measured figure
    kafka_retention_s: float = DAY     # history lives in the archive, not in Kafka
    replication: int = 3
    broker_write: float = 100e6
    broker_disk: float = 4 * 2**40
    disk_fill: float = 0.7

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if isinstance(value, float) and not math.isfinite(value):
                raise UserError(f"--{name.replace('_', '-')} must be a finite number, got "
                                f"{value}")
        positive = {"--meters": self.meters, "--utilities": self.utilities,
                    "--heartbeat": self.heartbeat_s, "--cores-per-worker": self.cores_per_worker,
                    "--redis-node-memory": self.redis_node_memory,
                    "--kafka-retention": self.kafka_retention_s,
                    "--replication": self.replication, "--broker-write": self.broker_write,
                    "--broker-disk": self.broker_disk}
        for flag, value in positive.items():
            if not value > 0:
                raise UserError(f"{flag} must be more than 0, got {value:g}")
        for flag, value in {"--utilisation": self.utilisation,
                            "--redis-max-fill": self.redis_max_fill,
                            "--disk-fill": self.disk_fill}.items():
            if not 0 < value <= 1:
                raise UserError(f"{flag} must be a fraction in (0, 1], got {value:g}")
        if not self.growth >= 1:
            raise UserError(f"--growth must be at least 1, got {self.growth:g}")
        if self.redis_replicas < 0:
            raise UserError(f"--redis-replicas must be 0 or more, got {self.redis_replicas}")
        if self.redis_bytes_per_meter_utility is not None and \
                not self.redis_bytes_per_meter_utility > 0:
            raise UserError("--redis-bytes-per-meter must be more than 0")


@dataclass
class Figure:
    """One number of the plan, its unit, and the formula with the inputs it came from."""

    name: str
    value: float
    unit: str
    formula: str

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "unit": self.unit, "formula": self.formula}


@dataclass
class Plan:
    mode: str
    rate: float
    figures: list[Figure] = field(default_factory=list)

    def __getitem__(self, name: str) -> Figure:
        return next(f for f in self.figures if f.name == name)


def check_costs(costs: Mapping[str, Any], modes: tuple[str, ...] = MODES) -> None:
    """The unit costs must have every field a plan reads; one line saying which is missing."""
    if not isinstance(costs, Mapping):
        raise UserError("unit costs: expected a JSON object")
    if not _positive(costs.get("redis_bytes_per_meter_utility")):
        raise UserError("unit costs: redis_bytes_per_meter_utility is missing or not a "
                        "positive number")
    for mode in modes:
        part = costs.get(mode)
        if not isinstance(part, Mapping):
            raise UserError(f"unit costs: no {mode!r} section (run benchmarks/"
                            "bench_unit_costs.py)")
        for name in COST_FIELDS:
            if not _positive(part.get(name)):
                raise UserError(f"unit costs: {mode}.{name} is missing or not a positive "
                                "number")


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _n(x: float) -> str:
    if x == int(x):
        return f"{x:,.0f}"
    return f"{x:,.1f}" if abs(x) >= 100 else f"{x:,.3g}"


def format_bytes(x: float) -> str:
    """Bytes in binary units (GiB, TiB), as Redis and disks are sold."""
    for unit, scale in (("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if x >= scale:
            return f"{x / scale:,.1f} {unit}"
    return f"{x:,.0f} B"


def plan(inputs: Inputs, costs: Mapping[str, Any], mode: str) -> Plan:
    """Every figure for one mode ('frames' or 'single') from the inputs and unit costs."""
    check_costs(costs, (mode,))
    c, i = costs[mode], inputs
    rate = readings_per_second(i.meters, i.utilities, i.heartbeat_s)
    p = Plan(mode, rate)
    add = p.figures.append
    add(Figure("readings_per_second", rate, "readings/s",
               f"{_n(i.meters)} meters x {i.utilities} utilities / {i.heartbeat_s:g} s heartbeat"))

    wcpu = c["worker_cpu_s_per_million"]
    cores = cores_needed(rate, wcpu, i.utilisation)
    add(Figure("worker_cores", cores, "cores",
               f"{_n(rate)} readings/s x {wcpu:g} CPU s per 1M readings / 1e6 / "
               f"{i.utilisation:g} utilisation"))
    workers = worker_processes(cores, i.cores_per_worker)
    add(Figure("worker_processes", workers, "processes",
               f"ceil({_n(cores)} cores / {i.cores_per_worker:g} core per worker)"))
    parts = partitions_per_topic(workers, i.utilities, i.growth)
    add(Figure("partitions_per_topic", parts, "partitions",
               f"ceil({_n(workers)} workers x {i.growth:g} growth / {i.utilities} topics); "
               f"{_n(parts * i.utilities)} in all"))

    rcpu = c["redis_cpu_s_per_million"]
    rcores = cores_needed(rate, rcpu, i.utilisation)
    add(Figure("redis_cores", rcores, "cores",
               f"{_n(rate)} readings/s x {rcpu:g} Redis CPU s per 1M readings / 1e6 / "
               f"{i.utilisation:g} utilisation"))
    per_meter = i.redis_bytes_per_meter_utility or float(costs["redis_bytes_per_meter_utility"])
    memory = redis_memory(i.meters, i.utilities, per_meter)
    add(Figure("redis_memory", memory, "bytes",
               f"{_n(i.meters)} meters x {i.utilities} utilities x {_n(per_meter)} B per meter "
               f"and utility = {format_bytes(memory)}"))
    by_cpu, by_mem, primaries = redis_primaries(rcores, memory, i.redis_node_memory,
                                                i.redis_max_fill)
    add(Figure("redis_primaries", primaries, "nodes",
               f"max(by CPU ceil({_n(rcores)} cores / 1 core per primary) = {by_cpu}, "
               f"by memory ceil({format_bytes(memory)} / ({format_bytes(i.redis_node_memory)} x "
               f"{i.redis_max_fill:g} fill)) = {by_mem})"))
    add(Figure("redis_nodes", primaries * (1 + i.redis_replicas), "nodes",
               f"{primaries} primaries x (1 + {i.redis_replicas} replica"
               f"{'' if i.redis_replicas == 1 else 's'})"))

    kb = c["kafka_all_bytes_per_reading"]
    ingress = rate * kb
    add(Figure("kafka_ingress", ingress, "bytes/s",
               f"{_n(rate)} readings/s x {kb:g} B per reading (source topics + worker "
               f"outputs, one replica) = {format_bytes(ingress)}/s"))
    disk = kafka_disk(rate, kb, i.kafka_retention_s, i.replication)
    add(Figure("kafka_disk", disk, "bytes",
               f"{format_bytes(ingress)}/s x {i.kafka_retention_s / DAY:g} d retention x "
               f"{i.replication} replicas = {format_bytes(disk)}"))
    by_write, by_disk, brokers = kafka_brokers(ingress, i.replication, i.broker_write, disk,
                                               i.broker_disk, i.disk_fill)
    add(Figure("kafka_brokers", brokers, "brokers",
               f"max({i.replication} replicas, by writes ceil({ingress / 1e6:,.1f} MB/s x "
               f"{i.replication} / {i.broker_write / 1e6:g} MB/s per broker) = {by_write}, by disk "
               f"ceil({format_bytes(disk)} / ({format_bytes(i.broker_disk)} x {i.disk_fill:g} fill)) = "
               f"{by_disk})"))

    ab = c["archive_bytes_per_reading"]
    s3 = s3_per_day(rate, ab)
    add(Figure("s3_bytes_per_day", s3, "bytes/day",
               f"{_n(rate)} readings/s x {ab:g} B per reading x 86,400 s = {format_bytes(s3)}/day"))
    return p
