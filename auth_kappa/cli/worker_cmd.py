"""`auth-kappa worker`: the Faust worker with flags mapped onto the AUTH_* configuration."""

from __future__ import annotations

import argparse
import os
import sys

from auth_kappa.config import Config

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
_FAUST_LEVEL = {"critical": "crit", "warning": "warn", "crit": "crit", "warn": "warn"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("worker", help="run a stream worker (faust -A auth_kappa.app worker)",
                       description="Consumes electricity, gas and water; start several with "
                                   "the same --group to split the partitions.")
    p.add_argument("--windows", help="window sizes, e.g. 1m,1h (default 1m,1h)")
    p.add_argument("--grace", help="allowed lateness after a window ends (default 30s)")
    p.add_argument("--retention", help="per size, e.g. 1m=48h,1h=90d (default: AUTH_RETENTION, "
                                       "else 1m=48h,1h=90d)")
    p.add_argument("--group", help="consumer group (default auth-kappa)")
    p.add_argument("--namespace", help="Redis namespace to write (default: the live pointer)")
    p.add_argument("--web-port", type=int, default=None,
                   help="serve Faust's web endpoints on this port (default: none)")
    p.add_argument("--log-level", default="info", type=str.lower,
                   choices=[*LOG_LEVELS, "crit", "warn"], metavar="{" + ",".join(LOG_LEVELS) + "}",
                   help="worker log level")
    p.add_argument("--loglevel", dest="log_level", type=str.lower, help=argparse.SUPPRESS,
                   choices=[*LOG_LEVELS, "crit", "warn"])  # the old spelling, hidden
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from auth_kappa.cli.preflight import check_kafka, check_redis

    env = dict(os.environ)
    for flag, var in (("windows", "AUTH_WINDOWS"), ("grace", "AUTH_GRACE"),
                      ("retention", "AUTH_RETENTION"), ("group", "AUTH_GROUP"),
                      ("namespace", "AUTH_NAMESPACE")):
        if getattr(args, flag):
            env[var] = getattr(args, flag)
    config = Config.load(env=env)  # a bad value fails here, in one line, not inside Faust
    check_redis(config.redis_url, cluster=config.redis_cluster)  # Faust would print 85 lines, or retry Kafka for minutes
    check_kafka(config.kafka)
    web = [f"--web-port={args.web_port}"] if args.web_port else ["--without-web"]
    level = _FAUST_LEVEL.get(args.log_level, args.log_level)
    argv = [sys.executable, "-m", "faust", "-A", "auth_kappa.app", "worker", "-l", level, *web]
    os.execvpe(argv[0], argv, env)
    return 0  # not reached
