"""How many readings/s one simulator process puts into Kafka, against baselines in the same run.

Measured (each --repeat times, median reported):
  sim->kafka     `simulate()` with the KafkaSink (confluent-kafka), one message per
                 reading, timed from the first message to the end of flush() (all acked).
  generate only  the same Simulation (numpy + Arrow encoding) with no sink: the ceiling.
  aiokafka loop  baseline: the same pre-generated messages sent with a plain
                 `await producer.send()` loop (no send_and_wait), then flush().
  per-event gen  baseline: the original's approach, one Python random.triangular() and
                 one f-string per reading, no sink.

Needs the local Kafka (`auth-kappa stack up`). Writes its section of benchmarks/README.md.

  .venv/bin/python benchmarks/bench_simulator_kafka.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from auth_kappa.config import UTILITIES, Config  # noqa: E402
from auth_kappa.kafka_admin import delete_topics  # noqa: E402
from benchmarks.report import cpu_model  # noqa: E402
from simulators import SimSpec, Simulation, make_registry, simulate  # noqa: E402
from simulators.sinks.kafka import KafkaSink, check_reachable  # noqa: E402

README = Path(__file__).with_name("README.md")
BEGIN, END = "<!-- bench_simulator_kafka -->", "<!-- /bench_simulator_kafka -->"
TARGET = 200_000


def bench_sim_kafka(spec: SimSpec, bootstrap: str, prefix: str, compression: str,
                    partitions: int) -> tuple[float, int]:
    sink = KafkaSink(bootstrap, topic_prefix=prefix, partitions=partitions, compression=compression)
    with tempfile.TemporaryDirectory() as out:
        # Open (topic creation, registry) is outside the timing: it is a one-off per run.
        sim_total = 3 * Simulation(spec).readings_per_utility
        t0 = time.perf_counter()
        manifest = simulate(spec, sink, Path(out))
        elapsed = time.perf_counter() - t0
    assert manifest["sink"]["delivery_errors"] == 0, manifest["sink"]
    assert manifest["sink"]["produced"] == sim_total
    return sim_total / elapsed, sim_total


def bench_generate(spec: SimSpec) -> float:
    t0 = time.perf_counter()
    n = 0
    for chunk in Simulation(spec).emissions():
        for e in chunk.values():
            n += len(e)
    return n / (time.perf_counter() - t0)


def first_messages(spec: SimSpec, limit: int) -> list[tuple[str, bytes, bytes]]:
    sim = Simulation(spec)
    keys = sim.registry.service_id.cast("binary").to_pylist()
    out: list[tuple[str, bytes, bytes]] = []
    for chunk in sim.emissions():
        for u, e in chunk.items():
            out += [(u, v, keys[m]) for v, m in zip(e.payload.to_pylist(), e.meter.tolist(), strict=True)]
        if len(out) >= limit:
            break
    return out[:limit]


async def _aiokafka_loop(bootstrap: str, prefix: str, messages: list[tuple[str, bytes, bytes]],
                         compression: str) -> float:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20,
                                max_batch_size=1 << 20, acks="all",
                                compression_type=None if compression == "none" else compression)
    await producer.start()
    try:
        t0 = time.perf_counter()
        for u, value, key in messages:
            await producer.send(prefix + u, value, key=key)
        await producer.flush()
        return len(messages) / (time.perf_counter() - t0)
    finally:
        await producer.stop()


def bench_per_event(spec: SimSpec, limit: int) -> float:
    """The original's shape: Python per reading (random.triangular + string formatting)."""
    reg = make_registry(spec).to_table().to_pylist()
    rng = random.Random(spec.seed)
    top = {"electricity": 0.30, "gas": 0.00045, "water": 0.023}
    t0 = time.perf_counter()
    n, tick = 0, 0
    while n < limit:
        for m in reg:
            start = spec.start + m["offset_s"] + tick * spec.heartbeat
            for u in UTILITIES:
                value = rng.triangular(0, top[u])
                line = (f"{m['service_id']},{m['user_name']},{m['type']},{start},{m['state']},"
                        f"{value:.9f},{start + spec.heartbeat}").encode()
                n += len(line) > 0
        tick += 1
    return n / (time.perf_counter() - t0)


def write_readme(section: str) -> None:
    text = README.read_text() if README.exists() else "# Benchmarks\n\nEach section is written by its script.\n"
    block = f"{BEGIN}\n{section.rstrip()}\n{END}"
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.DOTALL)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    README.write_text(text)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--meters", type=int, default=20_000)
    p.add_argument("--duration", type=float, default=300.0, help="simulated seconds")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--baseline-messages", type=int, default=300_000)
    p.add_argument("--compressions", default="lz4,none")
    p.add_argument("--no-readme", action="store_true")
    args = p.parse_args()

    config = Config.load()
    check_reachable(config.kafka)
    spec = SimSpec(meters=args.meters, duration=args.duration, seed=1)
    prefix = f"bench-sim-{os.getpid()}-"
    topics = [prefix + u for u in UTILITIES]
    results: dict[str, list[float]] = {}
    total = 0
    try:
        for _ in range(args.repeat):
            results.setdefault("generate only (numpy + Arrow, no sink)", []).append(bench_generate(spec))
            for comp in args.compressions.split(","):
                rate, total = bench_sim_kafka(spec, config.kafka, prefix, comp, config.partitions)
                results.setdefault(f"sim->kafka, confluent-kafka, {comp}", []).append(rate)
            messages = first_messages(spec, args.baseline_messages)
            rate = asyncio.run(_aiokafka_loop(config.kafka, prefix, messages, "lz4"))
            results.setdefault("baseline: aiokafka send() loop, lz4 (pre-generated)", []).append(rate)
            results.setdefault("baseline: per-event Python generation, no sink", []).append(
                bench_per_event(spec, args.baseline_messages))
            print(" ".join(f"{k.split(',')[0]}={v[-1]:,.0f}" for k, v in results.items()), file=sys.stderr)
    finally:
        delete_topics(config.kafka, topics)

    med = {k: statistics.median(v) for k, v in results.items()}
    best_sim = max(v for k, v in med.items() if k.startswith("sim->kafka"))
    aio = med["baseline: aiokafka send() loop, lz4 (pre-generated)"]
    per_event = med["baseline: per-event Python generation, no sink"]
    rows = "\n".join(f"| {k} | {v:,.0f} | {v / TARGET:.2f} |" for k, v in med.items())
    cpu = cpu_model()
    section = f"""## Simulator -> Kafka (`benchmarks/bench_simulator_kafka.py`)

One `auth-kappa simulate` process producing one Kafka message per reading (seed CSV,
key = service_id, acks=all, idempotent) into a single local broker on the same machine
({os.cpu_count()} cores, {cpu}; Python {platform.python_version()}). {args.meters:,} meters x
{args.duration:g} s at a 5 s heartbeat = {total:,} readings per run, median of {args.repeat}
runs, timed until flush() returned (every message acknowledged).

| measurement | readings/s | x target (200k/s) |
|---|---:|---:|
{rows}

- Simulator into Kafka vs the naive aiokafka `send()` loop: **{best_sim / aio:.1f}x**
  (the aiokafka loop sends pre-generated messages, so it is flattered).
- Vectorised generation vs per-event Python generation: **{med['generate only (numpy + Arrow, no sink)'] / per_event:.1f}x**.
- Target 200,000 readings/s: **{'met' if best_sim >= TARGET else 'NOT met'}** ({best_sim:,.0f}/s).

Reproduce: `auth-kappa stack up && .venv/bin/python benchmarks/bench_simulator_kafka.py`
(`--meters`, `--duration`, `--repeat`, `--compressions lz4,none,zstd`).
"""
    print(section)
    if not args.no_readme:
        write_readme(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
