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

from auth_kappa.errors import UserError
from dashboards.redis_admin import connected, redacted

__all__ = ["RULES", "create_user", "redacted", "user_url"]

RULES = ("reset", "on", "~auth:*", "resetchannels", "-@all", "+@read", "+@connection",
         "-@dangerous", "-scan", "-randomkey")


def create_user(admin_url: str, user: str = "dashboard", password: str | None = None) -> str:
    """Create or reset the read-only user; returns the redis:// URL that logs in as it."""
    if not user.replace("-", "").replace("_", "").isalnum():
        raise UserError(f"Redis user name {user!r}: letters, digits, - and _ only")
    password = password or secrets.token_urlsafe(24)
    with connected(admin_url, "Redis refused ACL SETUSER",
                   "it needs Redis 6+ and an admin connection in AUTH_REDIS_URL; without it "
                   "the dashboard reads with AUTH_REDIS_URL") as client:
        client.execute_command("ACL", "SETUSER", user, *RULES, f">{password}")
    return user_url(admin_url, user, password)


def user_url(admin_url: str, user: str, password: str) -> str:
    parts = urlsplit(admin_url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))

