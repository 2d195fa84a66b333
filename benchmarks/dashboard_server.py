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
from dashboards.app import create_app  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--http", default="auto", help="uvicorn HTTP parser: auto, h11, httptools")
    p.add_argument("--loop", default="auto", help="uvicorn event loop: auto, asyncio, uvloop")
    args = p.parse_args()
    config = Config.load()
    context = serve.make_context(serve.redis_reader(config))
    engine = Engine.connect(config.with_(redis_url=serve.dashboard_url(config)))
    app = create_app(context, extra_routes=routes(engine))
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False,
                http=args.http, loop=args.loop, backlog=4096, timeout_graceful_shutdown=2)


if __name__ == "__main__":
    main()
