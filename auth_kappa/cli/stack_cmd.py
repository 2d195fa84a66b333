"""`auth-kappa stack up | down | status [SERVICE ...]` and `stack balance-tags`."""

from __future__ import annotations

import argparse

from auth_kappa.config import Config
from auth_kappa.stack import manager
from auth_kappa.stack.redis_cluster import RedisCluster


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stack", help="start, stop or inspect the local Kafka, Redis and S3",
                       description="Real services on 127.0.0.1; data under AUTH_STACK_DIR "
                                   "(default .stack). Anyone with their own services skips "
                                   "this and sets AUTH_KAFKA, AUTH_REDIS_URL, AUTH_S3_ENDPOINT.")
    p.add_argument("action", choices=["up", "down", "status", "balance-tags"],
                   help="balance-tags: on a Redis Cluster (AUTH_REDIS_URL/--redis), move whole "
                        "slots (Redis's own migration, keys included) so every primary serves "
                        "an even share of the partition tags {<utility>:<p>} (workers may "
                        "run meanwhile)")
    p.add_argument("services", nargs="*", choices=[[], *manager.SERVICES],
                   metavar="SERVICE", help="any of: redis s3 kafka (default: all)")
    p.add_argument("--partitions", type=int, default=None,
                   help="partitions for the electricity/gas/water topics (default 4); for "
                        "balance-tags: the workers' stored counts if any, else AUTH_PARTITIONS")
    p.add_argument("--dry-run", action="store_true",
                   help="balance-tags: print the slots it would move, move none")
    p.add_argument("--kafka-brokers", type=int, default=None, metavar="N",
                   help="run Kafka as a cluster of N KRaft nodes on 9092.. (topics then "
                        "replicated min(3, N) times, min.insync.replicas 2); `status` and "
                        "`down` remember N (default: as last started, else 1)")
    p.add_argument("--redis-cluster", action="store_true", default=None,
                   help="run Redis as a cluster of 6 nodes on 7000-7005 (3 primaries, 3 "
                        "replicas) instead of one; remembered until `stack down redis`")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = Config.load(partitions=args.partitions, kafka_brokers=args.kafka_brokers,
                         redis_cluster=args.redis_cluster)
    only = list(dict.fromkeys(args.services)) or None
    if args.action == "up":
        manager.up(config, only)
        if "redis" in (only or manager.SERVICES):
            service = manager.SERVICES["redis"](config)
            if isinstance(service, RedisCluster):   # its nodes, whatever AUTH_REDIS_URL names
                config = config.with_(redis_url=f"redis://127.0.0.1:{service.first}/0",
                                      redis_cluster=True)
            _dashboard_user(config)
        return 0
    if args.action == "balance-tags":
        return _balance_tags(config, explicit=args.partitions, dry_run=args.dry_run)
    if args.action == "down":
        manager.down(config, only)
        return 0
    rows = manager.status(config, only)
    for row in rows:
        print(row.line)
    return 0 if all(r.answering for r in rows) else 1


def _balance_tags(config: Config, explicit: int | None, dry_run: bool) -> int:
    from auth_kappa.stack.tag_balance import Cluster, balance

    cluster = Cluster(config.redis_url)   # one line and exit if it is not a cluster
    counts, source = _partition_counts(config, explicit)
    print(f"stack: balance-tags: {sum(counts.values())} tags ({source}) over "
          f"{len(cluster.primaries)} primaries")
    for line in balance(cluster, counts, dry_run=dry_run).lines():
        print(f"stack: balance-tags: {line}")
    return 0


def _partition_counts(config: Config, explicit: int | None) -> tuple[dict[str, int], str]:
    """--partitions, else what the workers stored in the followed namespace, else
    AUTH_PARTITIONS: which tags {<utility>:<p>} exist."""
    from auth_kappa.state.redis_store import RedisWindowStore
    from auth_kappa.topology.schema import UTILITIES

    if explicit is None:
        store = RedisWindowStore.from_config(config.with_(redis_cluster=True))
        stored = store.partition_counts(refresh=True)
        if stored:
            return stored, f"partitions stored in namespace {store.namespace}"
    n = config.partitions
    return dict.fromkeys(UTILITIES, n), f"{n} partitions per utility"


def _dashboard_user(config: Config) -> None:
    """Re-create the dashboard's read-only user: a restarted Redis has lost it (ACL users
    are not persisted). The CLI composes the stack and the dashboard; the stack itself
    knows nothing of dashboards. On a cluster the user is set on every node (ACL users
    are not replicated)."""
    from dashboards.acl import STACK_USER, ensure_stack_user, stack_user_file

    ensure_stack_user(config)
    print(f"stack: redis: read-only user {STACK_USER} for the dashboard (its default when "
          f"AUTH_DASHBOARD_REDIS_URL is unset; URL in {stack_user_file(config)})")
