"""Who may see what: an operator token for the fleet, a signed link per household meter.

- Operator: `Authorization: Bearer <AUTH_OPERATOR_TOKEN>`, or the HttpOnly cookie that
  the login form sets: a random session id with an expiry (AUTH_DASHBOARD_SESSION_TTL,
  default 12h), kept server-side (dashboards/sessions.py), so signing out revokes it.
- Household: `?sig=<expiry>.<HMAC(secret, service_id, expiry)>` on the meter's URLs. The
  signature names one service_id and its expiry (epoch seconds), so editing the id gives
  403 and editing the expiry breaks the HMAC; after the expiry the link is refused with a
  message saying so. Links last AUTH_DASHBOARD_LINK_TTL (default 30d, `--link-ttl`).
  The secret is AUTH_DASHBOARD_SECRET (at least 32 bytes), else a random one generated
  once and kept in AUTH_DASHBOARD_SECRET_FILE (default
  $XDG_CONFIG_HOME/auth-kappa/dashboard-secret, i.e. ~/.config/...; mode 0600, refused
  when group or others may read it). Changing the secret revokes every household link.
Comparisons are constant-time (hmac.compare_digest).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from starlette.requests import HTTPConnection

from auth_kappa.config import parse_duration
from auth_kappa.errors import UserError
from dashboards.sessions import Sessions

COOKIE = "auth_operator"
LINK_TTL = "30d"                      # default lifetime of a household link
SESSION_TTL = "12h"                   # default lifetime of an operator sign-in
MIN_SECRET = 32                       # bytes
_SIG = re.compile(r"([0-9]{1,12})\.([A-Za-z0-9_-]{24})")


class Denied(Exception):
    """401: no credentials; 403: credentials that do not cover this resource."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Access:
    operator_token: str
    secret: bytes
    generated: bool = False       # True: no AUTH_OPERATOR_TOKEN, one was made for this run
    link_ttl: float = parse_duration(LINK_TTL)   # seconds a new household link stays valid
    sessions: Sessions = field(default_factory=Sessions, compare=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, token: str | None = None,
                 link_ttl: str | None = None) -> Access:
        """Token, secret and link lifetime: flags (token, link_ttl) over AUTH_* variables."""
        env = os.environ if env is None else env
        token = token or env.get("AUTH_OPERATOR_TOKEN", "")
        generated = not token
        token = token or secrets.token_urlsafe(24)
        if len(token) < 16:
            raise UserError("AUTH_OPERATOR_TOKEN must be at least 16 characters")
        name = "--link-ttl" if link_ttl else "AUTH_DASHBOARD_LINK_TTL"
        ttl = parse_duration(link_ttl or env.get("AUTH_DASHBOARD_LINK_TTL") or LINK_TTL,
                             name=name)
        if ttl < 1:
            raise UserError(f"{name}: a household link must live at least 1s, e.g. 30d")
        session_ttl = parse_duration(env.get("AUTH_DASHBOARD_SESSION_TTL") or SESSION_TTL,
                                     name="AUTH_DASHBOARD_SESSION_TTL")
        if session_ttl < 1:
            raise UserError("AUTH_DASHBOARD_SESSION_TTL: at least 1s, e.g. 12h")
        return cls(token, link_secret(env), generated, ttl, Sessions(session_ttl))

    # ---- households
    def link_expiry(self, now: float | None = None) -> int:
        """Expiry (epoch seconds) of a link signed now."""
        return int((time.time() if now is None else now) + self.link_ttl)

    def sign(self, service_id: str, expires: int | None = None) -> str:
        """'<expiry>.<mac>': the HMAC covers the id and the expiry, so neither can be edited."""
        expires = self.link_expiry() if expires is None else int(expires)
        msg = f"household:{service_id}:{expires}".encode()
        mac = hmac.new(self.secret, msg, hashlib.sha256).digest()[:18]   # 144 bits
        return f"{expires}.{base64.urlsafe_b64encode(mac).decode()}"

    def household_link(self, service_id: str, expires: int | None = None) -> str:
        return f"/household/{service_id}?sig={self.sign(service_id, expires)}"

    # ---- operators
    def token_ok(self, token: str) -> bool:
        return hmac.compare_digest(token.encode(), self.operator_token.encode())

    def is_operator(self, conn: HTTPConnection) -> bool:
        header = conn.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            return self.token_ok(header[7:].strip())
        cookie = conn.cookies.get(COOKIE)
        return bool(cookie) and self.sessions.valid(cookie)

    def presented_operator(self, conn: HTTPConnection) -> bool:
        return "authorization" in conn.headers or COOKIE in conn.cookies

    def require_operator(self, conn: HTTPConnection) -> None:
        if self.is_operator(conn):
            return
        if self.presented_operator(conn):
            raise Denied(403, "operator token not valid")
        raise Denied(401, "operator token required (Authorization: Bearer <token>)")

    def require_meter(self, conn: HTTPConnection, service_id: str) -> str:
        """'operator' or 'household'; the signature must name exactly this service_id."""
        if self.is_operator(conn):
            return "operator"
        sig = conn.query_params.get("sig")
        if sig is None:
            if self.presented_operator(conn):
                raise Denied(403, "operator token not valid")
            raise Denied(401, "this meter needs its signed link (?sig=...) or the operator token")
        m = _SIG.fullmatch(sig)
        if not m or not hmac.compare_digest(sig.encode(),
                                            self.sign(service_id, int(m.group(1))).encode()):
            raise Denied(403, "this link is not valid for this meter")
        expires = int(m.group(1))
        if expires <= time.time():
            raise Denied(403, f"this link expired on {expiry_text(expires)}; ask the operator "
                              "for a new one")
        return "household"


def expiry_text(expires: int) -> str:
    """'2026-04-01 12:00 UTC': how links and their refusals name the expiry."""
    return datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%d %H:%M UTC")


# ---- the household-link secret
def secret_file(env: Mapping[str, str]) -> Path:
    """AUTH_DASHBOARD_SECRET_FILE, else $XDG_CONFIG_HOME (~/.config)/auth-kappa/dashboard-secret."""
    if env.get("AUTH_DASHBOARD_SECRET_FILE"):
        return Path(env["AUTH_DASHBOARD_SECRET_FILE"]).expanduser()
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "auth-kappa" / "dashboard-secret"


def link_secret(env: Mapping[str, str]) -> bytes:
    """AUTH_DASHBOARD_SECRET, else the kept random secret (made on first use, mode 0600).
    Never derived from the operator token: a household link must not let anyone test
    token guesses offline."""
    given = env.get("AUTH_DASHBOARD_SECRET", "")
    if given:
        if len(given.encode()) < MIN_SECRET:
            raise UserError(f"AUTH_DASHBOARD_SECRET must be at least {MIN_SECRET} bytes; make "
                            "one with `python -c 'import secrets; print(secrets.token_urlsafe(32))'`")
        return given.encode()
    path = secret_file(env)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret(path)
    except OSError as exc:
        raise UserError(f"cannot create the link secret {path} ({exc.strerror}); set "
                        "AUTH_DASHBOARD_SECRET_FILE or AUTH_DASHBOARD_SECRET") from None
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(MIN_SECRET) + "\n")
    return _read_secret(path)


def _read_secret(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise UserError(f"{path} may be read by group or others (mode {mode:o}); run "
                            f"`chmod 600 {path}`")
        text = path.read_text().strip()
    except OSError as exc:
        raise UserError(f"cannot read the link secret {path} ({exc.strerror})") from None
    if len(text.encode()) < MIN_SECRET:
        raise UserError(f"{path} holds a secret under {MIN_SECRET} bytes; delete it to make a "
                        "new one (every household link then changes)")
    return text.encode()
