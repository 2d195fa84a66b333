"""`make demo`'s last step: serve what the demo computed, print the URLs, run until Ctrl-C."""

from __future__ import annotations

import sys
from pathlib import Path

from auth_kappa.config import Config
from dashboards import registry, serve


def wanted(flag: bool | None) -> bool:
    """--dashboard / --no-dashboard; by default only on a terminal, so CI never blocks."""
    return sys.stdout.isatty() if flag is None else flag


def serve_demo(out: Path, port: int, config: Config | None = None) -> None:
    """Embedded run (config None): index the simulator folder in-process. Real run: load the
    registry into Redis and read the demo's namespace there."""
    if config is None:
        print("dashboard: indexing the demo's windows for the dashboard", flush=True)
        reader = serve.embedded_reader(out / "sim")
        example = reader.first_meter()
    else:
        reg = out / "sim-kafka" / "registry.parquet"
        n = registry.load_file(config.redis_url, reg, cluster=config.redis_cluster)
        print(f"dashboard: loaded {n:,} meters into Redis", flush=True)
        # the demo's own sandbox: the stack's read-only user when `stack up` made one,
        # else the demo's (writable) Redis, as the demo itself wrote it
        reader = serve.redis_reader(config, allow_writable=True)
        example = registry.read_registry(reg)[0]["service_id"]
    serve.run(serve.make_context(reader), "127.0.0.1", port, example_meter=example)
