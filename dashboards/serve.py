"""Build a source and run the app under uvicorn; shared by `auth-kappa dashboard` and the demo."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path

import uvicorn

from auth_kappa.config import Config
from auth_kappa.errors import UserError
from dashboards import registry
from dashboards.acl import stack_user_url
from dashboards.app import create_app
from dashboards.auth import Access, expiry_text
from dashboards.context import Context, Settings
from dashboards.embedded_source import EmbeddedSource
from dashboards.redis_admin import connected, redacted
from dashboards.redis_source import RedisSource


def dashboard_url(config: Config, env: Mapping[str, str] | None = None) -> str:
    """AUTH_DASHBOARD_REDIS_URL when set, else the read-only user `stack up` keeps for this
    Redis, else AUTH_REDIS_URL: the dashboard reads without write rights whenever it can."""
    env = os.environ if env is None else env
    return env.get("AUTH_DASHBOARD_REDIS_URL") or stack_user_url(config) or config.redis_url


def redis_source(config: Config, url: str | None = None) -> RedisSource:
    """The live source, following config.pointer (AUTH_POINTER) like the workers and replay."""
    url = url or dashboard_url(config)
    prefix = registry.prefix_from_env()
    _check_reads(url, prefix, config.pointer)
    sizes = tuple(s.size for s in config.window_specs())
    replica = os.environ.get("AUTH_DASHBOARD_REDIS_REPLICA_URL") or None
    if replica:
        _check_reads(replica, prefix, config.pointer)
    return RedisSource(url, sizes, config.group, config.namespace, registry_prefix=prefix,
                       grace=config.grace, replica_url=replica, pointer=config.pointer)


def _check_reads(url: str, prefix: str, pointer: str) -> None:
    """Reachable, and the (ACL) user may read the registry and the pointer: fail now, in one
    line, not in the first request."""
    with connected(url, f"Redis user of {redacted(url)} cannot read {prefix}index or "
                   f"{pointer}", "the dashboard's user reads auth:* only: keep "
                   "AUTH_REGISTRY_PREFIX and AUTH_POINTER under auth:, or run `auth-kappa "
                   "dashboard create-redis-user`", unreachable="run `auth-kappa stack up` or "
                   "set AUTH_DASHBOARD_REDIS_URL") as client:
        client.ping()
        client.zcard(registry.index_key(prefix))
        client.get(pointer)


def embedded_source(folder: str | Path) -> EmbeddedSource:
    return EmbeddedSource.from_folder(folder)


def check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise UserError(f"cannot listen on {host}:{port} ({exc.strerror}); pass --port "
                            "with a free port") from None


def announce(access: Access, host: str, port: int, out=None) -> None:
    out = out or sys.stdout
    base = f"http://{host}:{port}"
    print(f"dashboard: {base}/  (API docs {base}/docs, health {base}/healthz)", file=out)
    if access.generated:
        print(f"dashboard: operator token (generated; set AUTH_OPERATOR_TOKEN to fix it): "
              f"{access.operator_token}", file=out)
    else:
        print("dashboard: operator token from AUTH_OPERATOR_TOKEN", file=out)
    print(f"dashboard: fleet page {base}/login#token={access.operator_token}", file=out)
    print("dashboard: Ctrl-C stops it", file=out, flush=True)


def run(context: Context, host: str, port: int, log_level: str = "warning",
        example_meter: str | None = None) -> None:
    """Serve until Ctrl-C (uvicorn handles SIGINT/SIGTERM and closes streams within 2 s)."""
    check_port(host, port)
    announce(context.access, host, port)
    if example_meter:
        expires = context.access.link_expiry()
        print(f"dashboard: a household page http://{host}:{port}"
              f"{context.access.household_link(example_meter, expires)}", flush=True)
        print(f"dashboard: that link expires on {expiry_text(expires)} "
              "(AUTH_DASHBOARD_LINK_TTL, default 30d)", flush=True)
    config = uvicorn.Config(create_app(context), host=host, port=port, log_level=log_level,
                            access_log=False, timeout_graceful_shutdown=2, lifespan="on",
                            backlog=4096)
    uvicorn.Server(config).run()


def make_context(source: object, token: str | None = None,
                 settings: Settings | None = None) -> Context:
    return Context(source, Access.from_env(token=token), settings or Settings())
