"""Build a reader and run the app under uvicorn; shared by `auth-kappa dashboard` and the demo."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path

import uvicorn

from auth_kappa.config import Config
from auth_kappa.errors import UserError
from dashboards import audit, cpu_priority, registry
from dashboards.acl import stack_user_url
from dashboards.app import create_app
from dashboards.auth import Access, expiry_text, secret_file
from dashboards.cluster_reader import ClusterReader
from dashboards.context import Context, Settings
from dashboards.embedded_reader import EmbeddedReader
from dashboards.protocol import with_header_timeout
from dashboards.redis_admin import connected, redacted
from dashboards.redis_reader import RedisReader

WRITABLE_FLAG = "--allow-writable-redis"
WATCHED_METERS = 30_000


def dashboard_url(config: Config, env: Mapping[str, str] | None = None,
                  allow_writable: bool = False) -> str:
    """AUTH_DASHBOARD_REDIS_URL when set, else the read-only user `stack up` keeps for this
    Redis; AUTH_REDIS_URL (which can write) only when the caller allows it explicitly."""
    env = os.environ if env is None else env
    url = env.get("AUTH_DASHBOARD_REDIS_URL") or stack_user_url(config)
    if url:
        return url
    if allow_writable:
        return config.redis_url
    raise UserError("no read-only Redis user for the dashboard: run `auth-kappa dashboard "
                    "create-redis-user` (or `auth-kappa stack up`), or set "
                    f"AUTH_DASHBOARD_REDIS_URL, or pass {WRITABLE_FLAG} to read with "
                    "AUTH_REDIS_URL")


def redis_reader(config: Config, url: str | None = None,
                 allow_writable: bool = False) -> RedisReader:
    """The live reader, following config.pointer (AUTH_POINTER) like the workers and replay."""
    url = url or dashboard_url(config, allow_writable=allow_writable)
    prefix = registry.prefix_from_env()
    cluster = config.redis_cluster   # AUTH_REDIS_CLUSTER=1: the dashboard's URL is a node's
    reader = ClusterReader if cluster else RedisReader
    _check_reads(url, prefix, config.pointer, cluster)
    sizes = tuple(s.size for s in config.window_specs())
    replica = os.environ.get("AUTH_DASHBOARD_REDIS_REPLICA_URL") or None
    if replica and not cluster:   # a cluster reader refuses one
        _check_reads(replica, prefix, config.pointer)
    return reader(url, sizes, config.group, config.namespace, registry_prefix=prefix,
                  grace=config.grace, replica_url=replica, pointer=config.pointer,
                  watch=watched_meters(), meter_keep={s.size: s.keep("meter")
                                                      for s in config.window_specs()},
                  state_keep={s.size: s.keep("state") for s in config.window_specs()})


def watched_meters(env: Mapping[str, str] | None = None) -> int:
    """AUTH_DASHBOARD_WATCH_METERS: meters the dashboard holds in memory, kept current by
    the checkpoints' change stream (about 12 KB each; 0: every household read asks Redis)."""
    raw = (os.environ if env is None else env).get("AUTH_DASHBOARD_WATCH_METERS", "")
    try:
        n = int(raw) if raw.strip() else WATCHED_METERS
    except ValueError:
        n = -1
    if n < 0:
        raise UserError(f"AUTH_DASHBOARD_WATCH_METERS must be a whole number >= 0, got {raw!r}")
    return n


def _check_reads(url: str, prefix: str, pointer: str, cluster: bool = False) -> None:
    """Reachable, and the (ACL) user may read the registry and the pointer: fail now, in one
    line, not in the first request."""
    with connected(url, f"Redis user of {redacted(url)} cannot read {prefix}index or "
                   f"{pointer}", "the dashboard's user reads auth:* only: keep "
                   "AUTH_REGISTRY_PREFIX and AUTH_POINTER under auth:, or run `auth-kappa "
                   "dashboard create-redis-user`", unreachable="run `auth-kappa stack up` or "
                   "set AUTH_DASHBOARD_REDIS_URL", cluster=cluster) as client:
        client.ping()
        client.zcard(registry.index_key(prefix))
        client.get(pointer)


def embedded_reader(folder: str | Path) -> EmbeddedReader:
    return EmbeddedReader.from_folder(folder)


def check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise UserError(f"cannot listen on {host}:{port} ({exc.strerror}); pass --port "
                            "with a free port") from None


def announce(access: Access, host: str, port: int, out=None, scheme: str = "http") -> None:
    """The URLs. The operator token only when this run generated it: on a terminal it is
    printed, otherwise (output going to a log) it is written to a mode-0600 file."""
    out = out or sys.stdout
    base = f"{scheme}://{host}:{port}"
    print(f"dashboard: {base}/  (API docs {base}/docs, health {base}/healthz)", file=out)
    if not access.generated:
        print(f"dashboard: operator token from AUTH_OPERATOR_TOKEN; sign in at {base}/login",
              file=out)
    elif out.isatty():
        print(f"dashboard: operator token (generated; set AUTH_OPERATOR_TOKEN to fix it): "
              f"{access.operator_token}", file=out)
        print(f"dashboard: fleet page {base}/login#token={access.operator_token}", file=out)
    else:
        kept = keep_token(access.operator_token)
        print(f"dashboard: operator token generated for this run, written to {kept} (mode "
              f"0600); set AUTH_OPERATOR_TOKEN to fix it; sign in at {base}/login", file=out)
    print("dashboard: Ctrl-C stops it", file=out, flush=True)


def keep_token(token: str, env: Mapping[str, str] | None = None) -> Path:
    """<the link secret's folder>/operator-token, mode 0600 (replaced every run)."""
    path = secret_file(os.environ if env is None else env).parent / "operator-token"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return path


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def warn_if_exposed(host: str, settings: Settings, tls: bool, out=None) -> None:
    """One line on stderr when other machines can connect."""
    if is_loopback(host):
        return
    out = out or sys.stderr
    todo = [] if tls or settings.behind_tls_proxy else [
        "serve it over TLS (--ssl-certfile/--ssl-keyfile, or a TLS proxy with "
        "AUTH_DASHBOARD_BEHIND_TLS_PROXY=1)"]
    if "*" in settings.allowed_hosts:
        todo.append("set AUTH_DASHBOARD_ALLOWED_HOSTS to the names clients use")
    print(f"dashboard: warning: listening on {host}, reachable from other machines"
          + (f"; {' and '.join(todo)}" if todo else ""), file=out, flush=True)


def server_config(context: Context, host: str, port: int, log_level: str = "warning",
                  ssl_certfile: str | None = None, ssl_keyfile: str | None = None,
                  extra_routes: list | None = None) -> uvicorn.Config:
    """uvicorn as `auth-kappa dashboard` runs it: bounded connections, a header deadline,
    idle keep-alive timeout, header size limit (the body limit is dashboards/guards.py).
    extra_routes: a benchmark's baselines, served the same way."""
    s = context.settings
    return uvicorn.Config(create_app(context, extra_routes), host=host, port=port, log_level=log_level,
                          access_log=False, timeout_graceful_shutdown=2, lifespan="on",
                          backlog=4096, http=with_header_timeout(s.header_timeout),
                          limit_concurrency=s.max_connections, timeout_keep_alive=s.keep_alive,
                          h11_max_incomplete_event_size=16384, ssl_certfile=ssl_certfile,
                          ssl_keyfile=ssl_keyfile)


def run(context: Context, host: str, port: int, log_level: str = "warning",
        example_meter: str | None = None, ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None) -> None:
    """Serve until Ctrl-C (uvicorn handles SIGINT/SIGTERM and closes streams within 2 s)."""
    check_port(host, port)
    claim_cpu(context.settings)
    scheme = "https" if ssl_certfile else "http"
    warn_if_exposed(host, context.settings, bool(ssl_certfile))
    announce(context.access, host, port, scheme=scheme)
    if example_meter:
        expires = context.access.link_expiry()
        print(f"dashboard: a household page {scheme}://{host}:{port}"
              f"{context.access.household_link(example_meter, expires)}", flush=True)
        print(f"dashboard: that link expires on {expiry_text(expires)} "
              "(AUTH_DASHBOARD_LINK_TTL, default 30d)", flush=True)
    audit.setup()
    uvicorn.Server(server_config(context, host, port, log_level, ssl_certfile,
                                 ssl_keyfile)).run()


def claim_cpu(settings: Settings) -> None:
    """The calling thread's CPU priority, said in one line: call it on the thread that
    will run the serving loop, before uvicorn starts."""
    print(f"dashboard: CPU priority {cpu_priority.claim(settings.cpu_priority)}", flush=True)


def make_context(reader: object, token: str | None = None,
                 settings: Settings | None = None, host: str = "127.0.0.1") -> Context:
    return Context(reader, Access.from_env(token=token), settings or Settings.from_env(host))
