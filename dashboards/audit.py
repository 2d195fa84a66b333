"""The audit trail: sign-ins (and refused ones), sign-outs, household links made.

One line each on the logger `auth_kappa.dashboard.audit`, which `auth-kappa dashboard`
sends to stderr at INFO whatever --log-level says. Never a token, a session id or a
signature: who (client address), what, and for a link which meter and until when.
"""

from __future__ import annotations

import logging
import sys

from starlette.requests import HTTPConnection

LOG = logging.getLogger("auth_kappa.dashboard.audit")


def setup() -> None:
    """Audit lines to stderr at INFO, once, independent of uvicorn's log level."""
    LOG.setLevel(logging.INFO)
    if not LOG.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s audit: %(message)s"))
        LOG.addHandler(handler)
        LOG.propagate = False


def record(conn: HTTPConnection, what: str) -> None:
    client = conn.client.host if conn.client else "?"
    LOG.info("%s from %s", what, client)
