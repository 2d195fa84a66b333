"""Bytes of Redis per meter at steady state, and what that means at 8 million meters.

Runs the live runtime (topology + Redis store, the worker's own code minus Kafka) over
simulated readings long enough for each per-meter key to reach its retention, then
reads Redis's own accounting: MEMORY USAGE per key and INFO used_memory.

    .venv/bin/python benchmarks/bench_state_size.py            # stack must be up
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from auth_kappa.config import Config, parse_duration  # noqa: E402
from auth_kappa.runtime.live import LiveRuntime  # noqa: E402
from auth_kappa.state.redis_store import RedisWindowStore  # noqa: E402
from auth_kappa.topology.decode import Message  # noqa: E402
from auth_kappa.topology.frames import encode_frame  # noqa: E402
from auth_kappa.topology.processor import Topology  # noqa: E402
from benchmarks.report import write_section  # noqa: E402
from simulators import SimSpec, iter_reading_batches  # noqa: E402

FLEET = 8_000_000


def run(meters: int, duration: str, config: Config) -> tuple[RedisWindowStore, float, int]:
    ns = f"size{uuid.uuid4().hex[:8]}"
    specs = config.window_specs()
    store = RedisWindowStore.connect(config.redis_url, ns, specs, group="bench")
    rt = LiveRuntime(Topology(specs, grace=config.grace), store, emit=lambda *a: None,
                     commit_interval=5.0)
    rt.assign([(u, 0) for u in ("electricity", "gas", "water")])
    spec = SimSpec(meters=meters, seed=1, duration=parse_duration(duration))
    n, started = 0, time.perf_counter()
    for offset, (utility, batch) in enumerate(iter_reading_batches(spec)):
        rt.process(utility, [Message(encode_frame(batch, compression=None), 0, offset)])
        n += batch.num_rows
    rt.checkpoint()
    return store, time.perf_counter() - started, n


def key_bytes(store: RedisWindowStore, pattern: str, sample: int = 200) -> tuple[float, float]:
    """Mean MEMORY USAGE and mean field count over a sample of keys."""
    keys = []
    for k in store.client.scan_iter(match=pattern, count=1000):
        keys.append(k)
        if len(keys) >= sample:
            break
    usage = [store.client.memory_usage(k, samples=0) for k in keys]
    fields = [store.client.hlen(k) for k in keys]
    return float(np.mean(usage)), float(np.mean(fields))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--meters", type=int, default=2000)
    ap.add_argument("--minute-duration", default="3h", help="long enough for 2 h retention")
    ap.add_argument("--hour-meters", type=int, default=20)
    ap.add_argument("--hour-duration", default="8d", help="long enough for 7 d retention")
    args = ap.parse_args()
    config = Config.load(windows="1m,1h")
    r = redis.Redis.from_url(config.redis_url)
    encoding = r.config_get("hash-max-listpack-entries")

    before = r.info("memory")["used_memory"]
    store, secs, n = run(args.meters, args.minute_duration, config)
    used = r.info("memory")["used_memory"] - before
    m1, f1 = key_bytes(store, f"{store.prefix}m:*:electricity:60")
    s1, _ = key_bytes(store, f"{store.prefix}s:*:60", sample=3)
    store.drop_namespace()

    store_h, secs_h, n_h = run(args.hour_meters, args.hour_duration, config)
    m60, f60 = key_bytes(store_h, f"{store_h.prefix}m:*:electricity:3600")
    store_h.drop_namespace()

    per_meter = 3 * (m1 + m60)
    rows = [
        ("per-meter 1m key (2 h retention)", f"{f1:.0f} fields", f"{m1:,.0f} B"),
        ("per-meter 1h key (7 d retention)", f"{f60:.0f} fields", f"{m60:,.0f} B"),
        ("one meter, 3 utilities, 1m + 1h", "", f"{per_meter:,.0f} B"),
        ("used_memory delta / meter (1m run)", f"{args.meters} meters",
         f"{used / args.meters:,.0f} B"),
        ("per-state 1m hash (48 h retention)", "51 states x windows", f"{s1:,.0f} B"),
        (f"{FLEET:,} meters, 3 utilities", "1m + 1h per meter",
         f"{per_meter * FLEET / 2**30:,.0f} GiB"),
    ]
    table = ["| what | shape | bytes |", "|---|---|---:|"]
    table += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    body = "\n".join([
        "## Redis bytes per meter (`benchmarks/bench_state_size.py`)", "",
        f"Live runtime (topology + Redis store) over {n:,} readings ({args.meters} meters x "
        f"{args.minute_duration}, {n / secs:,.0f} readings/s incl. Redis) and {n_h:,} readings "
        f"({args.hour_meters} meters x {args.hour_duration}); Redis "
        f"hash-max-listpack-entries={encoding.get('hash-max-listpack-entries')}.", "",
        *table, "",
        "Reproduce: `auth-kappa stack up && .venv/bin/python benchmarks/bench_state_size.py`",
    ])
    write_section("bench_state_size", body)
    print(body)


if __name__ == "__main__":
    main()
