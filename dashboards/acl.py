"""A read-only Redis user for the dashboard (Redis 6+ ACL), so a dashboard bug cannot write.

With the admin connection (AUTH_REDIS_URL) it runs

    ACL SETUSER dashboard reset on >PASSWORD ~auth:* resetchannels -@all +@read +@connection
        -@dangerous -scan -randomkey -dbsize -lolwut -select [+select|DB]

read commands on `auth:*` keys only: nothing that writes, nothing that looks at the whole
keyspace (KEYS, SCAN, RANDOMKEY, DBSIZE), no other database (SELECT only of the URL's own
database, which redis-py sends when it is not 0), no pub/sub.

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

from auth_kappa.config import Config
from auth_kappa.errors import UserError
from auth_kappa.stack.redis_server import RedisServer
from dashboards.redis_admin import connected, redacted

__all__ = ["RULES", "STACK_USER", "create_user", "ensure_stack_user", "redacted", "rules",
           "stack_password", "stack_user_url", "user_url", "write_url"]

RULES = ("reset", "on", "~auth:*", "resetchannels", "-@all", "+@read", "+@connection",
         "-@dangerous", "-scan", "-randomkey", "-dbsize", "-lolwut", "-select")
STACK_USER = "dashboard"


def rules(admin_url: str) -> tuple[str, ...]:
    """RULES, plus SELECT of the URL's own database when it is not 0."""
    db = _address(admin_url)[2]
    return RULES if db == "0" else (*RULES, f"+select|{db}")


def create_user(admin_url: str, user: str = STACK_USER, password: str | None = None) -> str:
    """Create or reset the read-only user; returns the redis:// URL that logs in as it."""
    if not user.replace("-", "").replace("_", "").isalnum():
        raise UserError(f"Redis user name {user!r}: letters, digits, - and _ only")
    password = password or secrets.token_urlsafe(24)
    with connected(admin_url, "Redis refused ACL SETUSER",
                   "it needs Redis 6+ and an admin connection in AUTH_REDIS_URL; without it "
                   "the dashboard reads with AUTH_REDIS_URL") as client:
        client.execute_command("ACL", "SETUSER", user, *rules(admin_url), f">{password}")
    return user_url(admin_url, user, password)


def user_url(admin_url: str, user: str, password: str) -> str:
    parts = urlsplit(admin_url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


# ---- the stack's user: re-applied by every `auth-kappa stack up`
def stack_user_file(config: Config) -> Path:
    return RedisServer(config).home / "dashboard.url"


def stack_user_url(config: Config) -> str | None:
    """The URL `stack up` kept, if it is for the Redis that config.redis_url names (a kept
    file must not send a dashboard pointed at another Redis there with the wrong password)."""
    try:
        url = read_url(stack_user_file(config))
    except FileNotFoundError:
        return None
    return url if url and _address(url) == _address(config.redis_url) else None


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
    url = create_user(config.redis_url, STACK_USER, stack_password(config))
    write_url(stack_user_file(config), url)
    return url


def _address(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    return ("127.0.0.1" if host == "localhost" else host, parts.port or 6379,
            parts.path.strip("/") or "0")
