"""`auth-kappa dashboard`: the household and fleet pages, JSON API, SSE, /metrics.

  auth-kappa dashboard                              # live: Redis the workers write
  auth-kappa dashboard --registry out/sim/registry.parquet   # load owners first, then serve
  auth-kappa dashboard --embedded out/sim           # no services: embedded engine on files
  auth-kappa dashboard load-registry out/sim/registry.parquet [--replace]
  auth-kappa dashboard create-redis-user            # read-only ACL user; prints its URL

Environment: AUTH_OPERATOR_TOKEN (fleet access; generated and printed when unset),
AUTH_DASHBOARD_SECRET (signs household links; default derived from the token),
AUTH_DASHBOARD_LINK_TTL (how long a household link lasts; default 30d, or --link-ttl),
AUTH_DASHBOARD_REDIS_URL (read-only user; default the user `auth-kappa stack up` keeps in
<AUTH_STACK_DIR>/redis/dashboard.url for the stack's Redis, else AUTH_REDIS_URL),
AUTH_DASHBOARD_REDIS_REPLICA_URL (optional replica: household reads go there first and
are hedged to the primary after 10 ms), AUTH_REGISTRY_PREFIX (default auth:registry:),
and every AUTH_* of the workers (namespace, group, windows, grace).
"""

from __future__ import annotations

import argparse

from auth_kappa.config import Config
from dashboards import acl, registry, serve
from dashboards.auth import Access
from dashboards.context import Context


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
    p.set_defaults(func=run)
    cmds = p.add_subparsers(dest="dashboard_command", metavar="[COMMAND]")
    cmds.required = False
    r = cmds.add_parser("load-registry", help="write registry.parquet into Redis (owners, names)")
    r.add_argument("file", help="registry.parquet from `auth-kappa simulate`")
    r.add_argument("--replace", action="store_true", help="drop meters not in this file")
    r.set_defaults(func=run_load)
    u = cmds.add_parser("create-redis-user", help="read-only Redis ACL user for the dashboard")
    u.add_argument("--user", default="dashboard")
    u.add_argument("--password", default=None,
                   help=f"default: for user {acl.STACK_USER}, the one `stack up` keeps; else "
                        "a random one")
    u.set_defaults(func=run_create_user)


def run(args: argparse.Namespace) -> int:
    access = Access.from_env(link_ttl=args.link_ttl)  # a bad token or TTL fails before work
    if args.embedded:
        source = serve.embedded_source(args.embedded)
        example = source.first_meter()
    else:
        config = Config.load()
        if args.registry:
            n = registry.load_file(config.redis_url, args.registry)
            print(f"dashboard: loaded {n:,} meters from {args.registry}")
        source = serve.redis_source(config)
        example = None
    serve.run(Context(source, access), args.host, args.port, args.log_level, example)
    return 0


def run_load(args: argparse.Namespace) -> int:
    config = Config.load()
    n = registry.load_file(config.redis_url, args.file, replace=args.replace)
    print(f"dashboard: loaded {n:,} meters from {args.file} into {acl.redacted(config.redis_url)}")
    return 0


def run_create_user(args: argparse.Namespace) -> int:
    config = Config.load()
    password = args.password
    if password is None and args.user == acl.STACK_USER:
        password = acl.stack_password(config)   # keep the URL `stack up` keeps working
    url = acl.create_user(config.redis_url, args.user, password)
    print(f"export AUTH_DASHBOARD_REDIS_URL='{url}'")
    return 0
