"""A read-only Redis user for the dashboard (Redis 6+ ACL), so a dashboard bug cannot write.

With the admin connection (AUTH_REDIS_URL) it runs

    ACL SETUSER dashboard reset on >PASSWORD ~auth:* resetchannels -@all +@read +@connection
        +multi +exec +discard -@dangerous -scan -randomkey -dbsize -lolwut -select [+select|DB]

read commands on `auth:*` keys only: nothing that writes, nothing that looks at the whole
keyspace (KEYS, SCAN, RANDOMKEY, DBSIZE), no other database (SELECT only of the URL's own
database, which redis-py sends when it is not 0), no pub/sub.

On a Redis Cluster (AUTH_REDIS_CLUSTER=1) ACL users are per node, never replicated: the
user is set on every node CLUSTER NODES lists (primaries and replicas, so a failover
keeps it), with CLUSTER SLOTS/SHARDS added, which the cluster client needs to find the
slots (READONLY, ASKING and COMMAND are in +@connection already).

ACL users live in the server's memory, so a restarted Redis has forgotten them. Hence
`auth-kappa stack up` re-applies the user `dashboard` every time (ensure_stack_user), with
a password generated once and kept, in the URL, in <AUTH_STACK_DIR>/redis/dashboard.url
(mode 0600, refused when group or others may read it); the dashboard reads with that URL
when AUTH_DASHBOARD_REDIS_URL is unset. `auth-kappa dashboard create-redis-user` does the
same for any Redis and writes the URL to a mode-0600 file (the password is never printed).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import redis
from redis.cluster import RedisCluster

from auth_kappa.config import Config
from auth_kappa.errors import ServiceUnavailable, UserError
from auth_kappa.stack.redis_cluster import cluster_home
from auth_kappa.stack.redis_server import RedisServer
from dashboards.redis_admin import connected, redacted

__all__ = ["CLUSTER_RULES", "RULES", "STACK_USER", "create_user", "ensure_stack_user", "redacted", "rules",
           "stack_password", "stack_user_url", "user_url", "write_url"]

# MULTI/EXEC: a meter's windows read with the change stream's counter, as one snapshot
# (dashboards/changes.py); the commands inside are still only reads
RULES = ("reset", "on", "~auth:*", "resetchannels", "-@all", "+@read", "+@connection",
         "+multi", "+exec", "+discard", "-@dangerous", "-scan", "-randomkey", "-dbsize",
         "-lolwut", "-select")
CLUSTER_RULES = ("+cluster|slots", "+cluster|shards")   # the cluster client's slot map
STACK_USER = "dashboard"


def rules(admin_url: str, cluster: bool = False) -> tuple[str, ...]:
    """RULES, plus SELECT of the URL's own database when it is not 0, plus on a cluster
    what its client needs to find the slots."""
    db = _address(admin_url)[2]
    out = RULES if db == "0" else (*RULES, f"+select|{db}")
    return (*out, *CLUSTER_RULES) if cluster else out


def create_user(admin_url: str, user: str = STACK_USER, password: str | None = None,
                cluster: bool = False) -> str:
    """Create or reset the read-only user (on a cluster: on every node); returns the
    redis:// URL that logs in as it."""
    if not user.replace("-", "").replace("_", "").isalnum():
        raise UserError(f"Redis user name {user!r}: letters, digits, - and _ only")
    password = password or secrets.token_urlsafe(24)
    setuser = ("ACL", "SETUSER", user, *rules(admin_url, cluster), f">{password}")
    with connected(admin_url, "Redis refused ACL SETUSER",
                   "it needs Redis 6+ and an admin connection in AUTH_REDIS_URL; without it "
                   "the dashboard reads with AUTH_REDIS_URL", cluster=cluster) as client:
        if not cluster:
            client.execute_command(*setuser)
        else:
            for node in cluster_nodes(client, admin_url):
                on_node(node, setuser)
    return user_url(admin_url, user, password)


def cluster_nodes(client: RedisCluster, admin_url: str) -> list[redis.Redis]:
    """A client (the admin URL's credentials) for every node CLUSTER NODES lists."""
    parts = urlsplit(admin_url)
    creds, at, _ = parts.netloc.rpartition("@")
    return [redis.Redis.from_url(urlunsplit(parts._replace(netloc=f"{creds}{at}{address}")),
                                 socket_connect_timeout=5)
            for address in client.cluster_nodes()]   # redis-py: {"host:port": node}


def on_node(node: redis.Redis, command: tuple[str, ...]) -> None:
    """Run one command on one cluster node; an unreachable node is named (the user must
    exist on all of them, or a failover to that node would lock the dashboard out)."""
    kw = node.connection_pool.connection_kwargs
    try:
        node.execute_command(*command)
    except redis.ConnectionError as exc:
        raise ServiceUnavailable(f"cannot reach cluster node {kw['host']}:{kw['port']} "
                                 f"({exc}); ACL users are per node: start it (`auth-kappa "
                                 "stack up`) and run this again") from None
    finally:
        node.close()


def user_url(admin_url: str, user: str, password: str) -> str:
    """The admin URL with the user's credentials instead (every seed node it names)."""
    parts = urlsplit(admin_url)
    hosts = parts.netloc.rpartition("@")[2] or "127.0.0.1"
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{hosts}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


# ---- the stack's user: re-applied by every `auth-kappa stack up`
def stack_user_file(config: Config) -> Path:
    home = cluster_home(config) if config.redis_cluster else RedisServer(config).home
    return home / "dashboard.url"


def stack_user_url(config: Config) -> str | None:
    """The URL `stack up` kept, if it is for the Redis that config.redis_url names (a kept
    file must not send a dashboard pointed at another Redis there with the wrong password)."""
    try:
        url = read_url(stack_user_file(config))
    except FileNotFoundError:
        return None
    return url if url and _address(url) in _addresses(config.redis_url) else None


def read_url(file: Path) -> str:
    """A kept URL; refused (one line) when group or others may read the file."""
    mode = file.stat().st_mode & 0o777
    if mode & 0o077:
        raise UserError(f"{file} holds a Redis password but may be read by group or others "
                        f"(mode {mode:o}); run `chmod 600 {file}`")
    return file.read_text().strip()


def write_url(file: Path, url: str) -> None:
    """Keep a URL (it holds a password) with mode 0600."""
    file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)    # an older file keeps its mode through O_CREAT: tighten it first
    with os.fdopen(fd, "w") as fh:
        fh.write(url + "\n")


def stack_password(config: Config) -> str | None:
    url = stack_user_url(config)
    password = urlsplit(url).password if url else None
    return unquote(password) if password else None


def ensure_stack_user(config: Config) -> str:
    """(Re)apply the stack's read-only user with its kept password; first time, make one."""
    url = create_user(config.redis_url, STACK_USER, stack_password(config),
                      cluster=config.redis_cluster)
    write_url(stack_user_file(config), url)
    return url


def _address(url: str) -> tuple[str, int, str]:
    """(host, port, db) of the URL's (first) node."""
    return _addresses(url)[0]


def _addresses(url: str) -> list[tuple[str, int, str]]:
    """(host, port, db) of every node the URL names (a cluster's may name several seeds)."""
    parts = urlsplit(url)
    out = []
    for node in parts.netloc.rpartition("@")[2].split(","):
        one = urlsplit("//" + node)
        host = one.hostname or "127.0.0.1"
        out.append(("127.0.0.1" if host == "localhost" else host, one.port or 6379,
                    parts.path.strip("/") or "0"))
    return out
