"""Baseline for bench_replay: the same windows from the same Parquet archive, in DuckDB.

Standalone (stdlib + duckdb) so it runs in .venv-bench, which has duckdb but not the
project:  python benchmarks/baselines/duckdb_aggregate.py ARCHIVE_ROOT START THREADS
prints [seconds, {utility: readings in 1-minute state windows}] as JSON.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

UTILS = ("electricity", "gas", "water")


def run(folder: Path, start: int, threads: int) -> tuple[float, dict[str, int]]:
    """Dedup on (utility, service_id, end_ts), then sum/count/min/max per meter and per
    state for 1 min and 1 h, as the topology does."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    src = f"read_parquet('{folder}/archive/utility=*/*/*/*.parquet', hive_partitioning = true)"
    t0 = time.perf_counter()
    con.execute(f"""CREATE TEMP TABLE d AS
        SELECT utility, service_id, end_ts, any_value(state) AS state,
               any_value(consumption) AS c
        FROM {src} WHERE end_ts >= {start} GROUP BY utility, service_id, end_ts""")
    for name, key, size in (("m1", "service_id", 60), ("m60", "service_id", 3600),
                            ("s1", "state", 60), ("s60", "state", 3600)):
        con.execute(f"""CREATE TEMP TABLE {name} AS
            SELECT utility, {key}, end_ts // {size} * {size} AS ws, sum(c) AS s,
                   count(*) AS n, min(c) AS lo, max(c) AS hi
            FROM d GROUP BY ALL""")
    seconds = time.perf_counter() - t0
    counts = dict(con.execute("SELECT utility, sum(n) FROM s1 GROUP BY utility").fetchall())
    con.close()
    return seconds, {u: int(counts.get(u, 0)) for u in UTILS}


if __name__ == "__main__":
    print(json.dumps(run(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))))
