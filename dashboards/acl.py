"""A read-only Redis user for the dashboard (Redis 6+ ACL), so a dashboard bug cannot write.

`auth-kappa dashboard create-redis-user` runs, with the admin connection (AUTH_REDIS_URL):

    ACL SETUSER dashboard reset on >PASSWORD ~auth:* resetchannels -@all +@read +@connection
        -@dangerous -scan -randomkey

read commands on `auth:*` keys only: nothing that writes, no key enumeration (KEYS,
SCAN, RANDOMKEY), no pub/sub. It prints the URL to export as AUTH_DASHBOARD_REDIS_URL. ACL users
live in the server's memory: re-run it after Redis restarts (or persist with an aclfile).
"""

from __future__ import annotations

import secrets
from urllib.parse import quote, urlsplit, urlunsplit

import redis

from auth_kappa.errors import ServiceUnavailable, UserError

RULES = ("reset", "on", "~auth:*", "resetchannels", "-@all", "+@read", "+@connection",
         "-@dangerous", "-scan", "-randomkey")


def create_user(admin_url: str, user: str = "dashboard", password: str | None = None) -> str:
    """Create or reset the read-only user; returns the redis:// URL that logs in as it."""
    if not user.replace("-", "").replace("_", "").isalnum():
        raise UserError(f"Redis user name {user!r}: letters, digits, - and _ only")
    password = password or secrets.token_urlsafe(24)
    client = redis.Redis.from_url(admin_url, socket_connect_timeout=5)
    try:
        client.execute_command("ACL", "SETUSER", user, *RULES, f">{password}")
    except redis.ConnectionError as exc:
        raise ServiceUnavailable(f"cannot reach Redis at {admin_url} ({exc}); run "
                                 "`auth-kappa stack up` or set AUTH_REDIS_URL") from None
    except redis.ResponseError as exc:
        raise UserError(f"Redis refused ACL SETUSER ({exc}); it needs Redis 6+ and an admin "
                        "connection in AUTH_REDIS_URL; without it the dashboard reads with "
                        "AUTH_REDIS_URL") from None
    finally:
        client.close()
    return user_url(admin_url, user, password)


def user_url(admin_url: str, user: str, password: str) -> str:
    parts = urlsplit(admin_url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
