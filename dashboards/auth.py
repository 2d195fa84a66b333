"""Who may see what: an operator token for the fleet, a signed link per household meter.

- Operator: `Authorization: Bearer <AUTH_OPERATOR_TOKEN>`, or the HttpOnly cookie that
  the login form sets (the cookie holds an HMAC of the token, never the token itself).
- Household: `?sig=<HMAC(secret, service_id)>` on the meter's URLs. The signature names
  one service_id, so editing the id in the URL gives 403, not another meter's data.
  The secret is AUTH_DASHBOARD_SECRET, else derived from the operator token (rotating
  either revokes every household link).
Comparisons are constant-time (hmac.compare_digest).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import HTTPConnection

COOKIE = "auth_operator"


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

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, token: str | None = None) -> Access:
        env = os.environ if env is None else env
        token = token or env.get("AUTH_OPERATOR_TOKEN", "")
        generated = not token
        token = token or secrets.token_urlsafe(24)
        if len(token) < 16:
            from auth_kappa.errors import UserError
            raise UserError("AUTH_OPERATOR_TOKEN must be at least 16 characters")
        secret = env.get("AUTH_DASHBOARD_SECRET", "").encode() or \
            hmac.new(token.encode(), b"auth-kappa household links v1", hashlib.sha256).digest()
        return cls(token, secret, generated)

    # ---- households
    def sign(self, service_id: str) -> str:
        mac = hmac.new(self.secret, b"household:" + service_id.encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()[:18]).decode()  # 144 bits, 24 chars

    def household_link(self, service_id: str) -> str:
        return f"/household/{service_id}?sig={self.sign(service_id)}"

    # ---- operators
    def session_value(self) -> str:
        mac = hmac.new(self.secret, b"operator-session:" + self.operator_token.encode(),
                       hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")

    def token_ok(self, token: str) -> bool:
        return hmac.compare_digest(token.encode(), self.operator_token.encode())

    def is_operator(self, conn: HTTPConnection) -> bool:
        header = conn.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            return self.token_ok(header[7:].strip())
        cookie = conn.cookies.get(COOKIE)
        return bool(cookie) and hmac.compare_digest(cookie.encode(),
                                                    self.session_value().encode())

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
        if hmac.compare_digest(sig.encode(), self.sign(service_id).encode()):
            return "household"
        raise Denied(403, "this link is not valid for this meter")
