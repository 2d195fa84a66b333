"""`auth-kappa dashboard`: the household and fleet pages, JSON API, SSE, /metrics.

  auth-kappa dashboard                              # live: Redis the workers write
  auth-kappa dashboard --registry out/sim/registry.parquet   # load owners first, then serve
  auth-kappa dashboard --embedded out/sim           # no services: embedded engine on files
  auth-kappa dashboard load-registry out/sim/registry.parquet [--replace]
  auth-kappa dashboard create-redis-user            # read-only ACL user; URL kept in a file

Environment: AUTH_OPERATOR_TOKEN (fleet access; when unset one is generated for the run
and shown once: printed on a terminal, else written to ~/.config/auth-kappa/operator-token),
AUTH_DASHBOARD_SECRET (signs household links, at least 32 bytes; default a random secret
made once in AUTH_DASHBOARD_SECRET_FILE, default ~/.config/auth-kappa/dashboard-secret,
mode 0600), AUTH_DASHBOARD_LINK_TTL (how long a household link lasts; default 30d, or
--link-ttl), AUTH_DASHBOARD_SESSION_TTL (operator sign-in; default 12h),
AUTH_DASHBOARD_ALLOWED_HOSTS (Host names served, comma-separated; default the loopback
names and --host), AUTH_DASHBOARD_BEHIND_TLS_PROXY=1 (HSTS and Secure cookies behind a TLS
proxy), AUTH_DASHBOARD_REDIS_URL (read-only user; default the user `auth-kappa stack up`
keeps in <AUTH_STACK_DIR>/redis/dashboard.url for the stack's Redis; AUTH_REDIS_URL, which
can write, only with --allow-writable-redis),
AUTH_DASHBOARD_CPU_PRIORITY (the serving loop's: auto, the default, takes real-time
SCHED_FIFO 1 when permitted so reads do not wait for a core behind workers on the same
host; realtime or normal, or --cpu-priority),
AUTH_DASHBOARD_REDIS_REPLICA_URL (optional replica: household reads go there first and
are hedged to the primary after 10 ms; a single Redis only), AUTH_REDIS_CLUSTER=1 (the
Redis URLs name nodes of a Redis Cluster: reads go one pipeline per node, and
create-redis-user sets the user on every node), AUTH_REGISTRY_PREFIX (default auth:registry:),
and every AUTH_* of the workers (namespace, group, windows, grace).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from auth_kappa.config import Config
from auth_kappa.errors import UserError
from dashboards import acl, cpu_priority, registry, serve
from dashboards.auth import Access
from dashboards.context import Context, Settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dashboard", help="serve the household/fleet pages and the JSON API",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="listen port (default 8000)")
    p.add_argument("--embedded", metavar="DIR", default=None,
                   help="serve the embedded engine's run over a simulator folder (no services)")
    p.add_argument("--registry", metavar="FILE", default=None,
                   help="load this registry.parquet into Redis before serving")
    p.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
    p.add_argument("--link-ttl", default=None, metavar="DURATION",
                   help="how long new household links last, e.g. 7d (default "
                        "AUTH_DASHBOARD_LINK_TTL, else 30d)")
    p.add_argument(serve.WRITABLE_FLAG, action="store_true",
                   help="with no read-only user configured, read with AUTH_REDIS_URL, which "
                        "can write (default: refuse)")
    p.add_argument("--ssl-certfile", default=None, metavar="PEM",
                   help="serve HTTPS with this certificate (and --ssl-keyfile)")
    p.add_argument("--ssl-keyfile", default=None, metavar="PEM", help="its private key")
    p.add_argument("--cpu-priority", choices=cpu_priority.MODES, default=None,
                   help="the serving loop's: realtime (SCHED_FIFO 1, or refuse to start), "
                        "normal, or auto: realtime when permitted (default "
                        "AUTH_DASHBOARD_CPU_PRIORITY, else auto)")
    p.set_defaults(func=run)
    cmds = p.add_subparsers(dest="dashboard_command", metavar="[COMMAND]")
    cmds.required = False
    r = cmds.add_parser("load-registry", help="write registry.parquet into Redis (owners, names)")
    r.add_argument("file", help="registry.parquet from `auth-kappa simulate`")
    r.add_argument("--replace", action="store_true", help="drop meters not in this file")
    r.set_defaults(func=run_load)
    u = cmds.add_parser("create-redis-user", help="read-only Redis ACL user for the dashboard",
                        description="Creates (or resets) a read-only ACL user and writes its "
                        "URL, password included, to a mode-0600 file; the password is never "
                        "printed. Password: AUTH_DASHBOARD_REDIS_PASSWORD, or one line on "
                        f"stdin with --password-stdin; default for user {acl.STACK_USER} the "
                        "one `stack up` keeps, else a random one.")
    u.add_argument("--user", default="dashboard", help="ACL user name (default dashboard)")
    u.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of stdin")
    u.add_argument("--url-file", default=None, metavar="FILE",
                   help="where to keep the URL (default <AUTH_STACK_DIR>/redis/<user>.url)")
    u.add_argument("--password", default=None, help=argparse.SUPPRESS)
    u.set_defaults(func=run_create_user)


def run(args: argparse.Namespace) -> int:
    access = Access.from_env(link_ttl=args.link_ttl)  # a bad token or TTL fails before work
    settings = Settings.from_env(args.host)
    if args.cpu_priority:
        settings = dataclasses.replace(settings, cpu_priority=args.cpu_priority)
    if bool(args.ssl_certfile) != bool(args.ssl_keyfile):
        raise UserError("--ssl-certfile and --ssl-keyfile go together")
    if args.embedded:
        reader = serve.embedded_reader(args.embedded)
        example = reader.first_meter()
    else:
        config = Config.load()
        if args.registry:
            n = registry.load_file(config.redis_url, args.registry,
                                   cluster=config.redis_cluster)
            print(f"dashboard: loaded {n:,} meters from {args.registry}")
        reader = serve.redis_reader(config, allow_writable=args.allow_writable_redis)
        example = None
    serve.run(Context(reader, access, settings), args.host, args.port, args.log_level, example,
              args.ssl_certfile, args.ssl_keyfile)
    return 0


def run_load(args: argparse.Namespace) -> int:
    config = Config.load()
    n = registry.load_file(config.redis_url, args.file, replace=args.replace,
                           cluster=config.redis_cluster)
    print(f"dashboard: loaded {n:,} meters from {args.file} into {acl.redacted(config.redis_url)}")
    return 0


def run_create_user(args: argparse.Namespace) -> int:
    if args.password is not None:
        raise UserError("--password would leave the password in the shell history and the "
                        "process list; set AUTH_DASHBOARD_REDIS_PASSWORD or pass "
                        "--password-stdin")
    config = Config.load()
    password = os.environ.get("AUTH_DASHBOARD_REDIS_PASSWORD") or None
    if args.password_stdin:
        password = sys.stdin.readline().strip()
        if not password:
            raise UserError("--password-stdin: the first line of stdin is empty")
    if password is None and args.user == acl.STACK_USER:
        password = acl.stack_password(config)   # keep the URL `stack up` keeps working
    url = acl.create_user(config.redis_url, args.user, password, cluster=config.redis_cluster)
    file = Path(args.url_file) if args.url_file else \
        acl.stack_user_file(config).with_name(f"{args.user}.url")
    acl.write_url(file, url)
    print(f"dashboard: read-only Redis user {args.user} on {acl.redacted(url)}; its URL is "
          f"in {file} (mode 0600)")
    print(f'export AUTH_DASHBOARD_REDIS_URL="$(cat {file})"')
    return 0
