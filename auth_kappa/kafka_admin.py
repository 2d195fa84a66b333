"""Topic administration shared by the stack, the simulator and the workers."""

from __future__ import annotations

from collections.abc import Iterable

from auth_kappa.errors import ServiceUnavailable


def ensure_topics(bootstrap: str, topics: Iterable[str], partitions: int,
                  timeout: float = 30.0) -> list[str]:
    """Create missing topics (replication 1 on the local stack); return the ones created."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        existing = set(admin.list_topics(timeout=timeout).topics)
    except Exception as exc:  # noqa: BLE001
        raise ServiceUnavailable(
            f"cannot reach Kafka at {bootstrap} ({exc}); run `auth-kappa stack up` "
            "or set AUTH_KAFKA") from None
    wanted = [t for t in topics if t not in existing]
    if not wanted:
        return []
    futures = admin.create_topics([NewTopic(t, partitions, 1) for t in wanted],
                                  operation_timeout=timeout)
    for topic, fut in futures.items():
        try:
            fut.result()
        except Exception as exc:  # noqa: BLE001
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise ServiceUnavailable(f"could not create topic {topic}: {exc}") from None
    return wanted
