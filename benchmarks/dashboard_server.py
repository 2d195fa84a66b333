"""The dashboard as `auth-kappa dashboard` runs it, plus the benchmark's baseline routes.

    python benchmarks/dashboard_server.py --port 8123     # AUTH_* env as for the CLI
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from auth_kappa.config import Config  # noqa: E402
from auth_kappa.engine import Engine  # noqa: E402
from benchmarks.baselines.dashboard_naive import routes  # noqa: E402
from dashboards import serve  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args()
    config = Config.load()
    context = serve.make_context(serve.redis_reader(config))
    engine = Engine.connect(config.with_(redis_url=serve.dashboard_url(config)))
    serve.claim_cpu(context.settings)
    uvicorn.Server(serve.server_config(context, "127.0.0.1", args.port,
                                       extra_routes=routes(engine))).run()


if __name__ == "__main__":
    main()
