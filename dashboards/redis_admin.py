"""Short-lived synchronous Redis connections for the dashboard's commands and start-up checks.

Loading the registry, creating the ACL user and checking the dashboard's reads each open
one connection, run a few commands and must end any failure in one line that names the
fix; this is that block, once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis
from redis.exceptions import RedisClusterException

from auth_kappa.errors import ServiceUnavailable, UserError, redacted
from auth_kappa.state.clients import Client, sync_client

STACK_HINT = "run `auth-kappa stack up` or set AUTH_REDIS_URL"


@contextmanager
def connected(url: str, refused: str, fix: str, unreachable: str = STACK_HINT,
              cluster: bool = False) -> Iterator[Client]:
    """A client for `url` (a Redis Cluster's, following slots, with `cluster`);
    unreachable -> ServiceUnavailable, a refused command -> UserError "<refused>
    (<reason>); <fix>". The password never appears in a message."""
    client = None
    try:
        client = sync_client(url, cluster, socket_connect_timeout=5)
        yield client
    except (redis.ConnectionError, RedisClusterException) as exc:
        # also a wrong password (AuthenticationError); a cluster client that reached no
        # node (or was refused CLUSTER SLOTS) raises RedisClusterException
        raise ServiceUnavailable(f"cannot reach Redis at {redacted(url)} ({exc}); "
                                 f"{unreachable}") from None
    except redis.ResponseError as exc:     # also NOPERM from an ACL user
        raise UserError(f"{refused} ({exc}); {fix}") from None
    finally:
        if client is not None:
            client.close()


