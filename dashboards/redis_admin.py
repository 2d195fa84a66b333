"""Short-lived synchronous Redis connections for the dashboard's commands and start-up checks.

Loading the registry, creating the ACL user and checking the dashboard's reads each open
one connection, run a few commands and must end any failure in one line that names the
fix; this is that block, once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis

from auth_kappa.errors import ServiceUnavailable, UserError, redacted

STACK_HINT = "run `auth-kappa stack up` or set AUTH_REDIS_URL"


@contextmanager
def connected(url: str, refused: str, fix: str,
              unreachable: str = STACK_HINT) -> Iterator[redis.Redis]:
    """A client for `url`; unreachable -> ServiceUnavailable, a refused command ->
    UserError "<refused> (<reason>); <fix>". The password never appears in a message."""
    client = redis.Redis.from_url(url, socket_connect_timeout=5)
    try:
        yield client
    except redis.ConnectionError as exc:   # also a wrong password (AuthenticationError)
        raise ServiceUnavailable(f"cannot reach Redis at {redacted(url)} ({exc}); "
                                 f"{unreachable}") from None
    except redis.ResponseError as exc:     # also NOPERM from an ACL user
        raise UserError(f"{refused} ({exc}); {fix}") from None
    finally:
        client.close()


