"""Fast service checks before a command starts work: one line instead of a client's retries.

Kafka and Redis clients retry (librdkafka and aiokafka for minutes), and a failure deep
inside Faust or a replay prints dozens of lines of traceback. Each command that needs a
service checks it here first, with a short bounded timeout, and fails with one line that
says where it looked and what to run.
"""

from __future__ import annotations

import socket

from auth_kappa.errors import ServiceUnavailable, redacted

TIMEOUT = 3.0
STACK_UP = "run `auth-kappa stack up`"


def _reason(exc: BaseException) -> str:
    """'connection refused', 'timed out': the cause without the client's wrapping."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        inner = exc.__cause__ or exc.__context__
        if not isinstance(inner, BaseException):
            break
        exc = inner
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc).rstrip(".") or type(exc).__name__


def check_redis(url: str, timeout: float = TIMEOUT, cluster: bool = False) -> None:
    """PING Redis at url (a cluster: its seed nodes); unreachable or refused credentials ->
    ServiceUnavailable."""
    import redis

    from auth_kappa.state.clients import sync_client

    try:
        # connecting fails fast; a reachable Redis busy with a large checkpoint may take
        # seconds to answer, and that is not "unreachable"
        client = sync_client(url, cluster, socket_connect_timeout=timeout,
                             socket_timeout=max(timeout, 20.0), retry_on_timeout=False)
    except redis.RedisError as exc:   # a cluster client connects when it is made
        if isinstance(exc, redis.AuthenticationError):
            raise ServiceUnavailable(f"Redis at {redacted(url)} refused the credentials ({exc}); "
                                     "fix the user:password in AUTH_REDIS_URL or --redis") from None
        raise ServiceUnavailable(f"Redis Cluster at {redacted(url)} unreachable "
                                 f"({_reason(exc)}); {STACK_UP} or set AUTH_REDIS_URL or "
                                 "--redis") from None
    except ValueError as exc:
        raise ServiceUnavailable(f"Redis URL {redacted(url)!r} is not valid ({exc}); set "
                                 "AUTH_REDIS_URL or --redis to e.g. redis://127.0.0.1:6379/0"
                                 ) from None
    try:
        client.ping()
    except redis.AuthenticationError as exc:
        raise ServiceUnavailable(f"Redis at {redacted(url)} refused the credentials ({exc}); "
                                 "fix the user:password in AUTH_REDIS_URL or --redis") from None
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        raise ServiceUnavailable(f"Redis at {redacted(url)} unreachable ({_reason(exc)}); "
                                 f"{STACK_UP} or set AUTH_REDIS_URL or --redis") from None
    finally:
        client.close()


def check_kafka(bootstrap: str, timeout: float = TIMEOUT) -> None:
    """Open a TCP connection to a bootstrap server; none answering -> ServiceUnavailable."""
    last: BaseException | None = None
    for server in filter(None, (s.strip() for s in bootstrap.split(","))):
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port or 9092)),
                                          timeout=timeout):
                return
        except ValueError:
            last = ValueError(f"bad port in {server!r}")
        except OSError as exc:
            last = exc
    reason = _reason(last) if last is not None else "no servers given"
    raise ServiceUnavailable(f"Kafka at {bootstrap} unreachable ({reason}); {STACK_UP} or set "
                             "AUTH_KAFKA or --kafka")
