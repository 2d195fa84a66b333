"""Topic administration shared by the stack, the simulator and the workers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from auth_kappa import kafka_clients
from auth_kappa.errors import ServiceUnavailable

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer

    from auth_kappa.config import Config


def group_consumer(config: Config, group: str) -> AIOKafkaConsumer:
    """A group consumer for bulk reads: no auto-commit (progress lives elsewhere), large
    fetches, a session short enough that a dead worker's partitions move quickly, and
    metadata fresh enough that new partitions are consumed within half a minute."""
    from aiokafka import AIOKafkaConsumer

    return AIOKafkaConsumer(
        **kafka_clients.aiokafka(config), group_id=group, enable_auto_commit=False,
        auto_offset_reset="earliest", max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
        session_timeout_ms=int(config.session_timeout * 1000),
        heartbeat_interval_ms=int(min(3.0, config.session_timeout / 3) * 1000),
        max_poll_interval_ms=300_000,
        # partitions added to a topic join the group's assignment within this
        metadata_max_age_ms=30_000)


def ensure_topics(client: str | Mapping[str, Any], topics: Iterable[str], partitions: int,
                  timeout: float = 30.0, replication: int = 0) -> list[str]:
    """Create missing topics; return the ones created. `client`: a bootstrap address, or
    librdkafka settings (kafka_clients.librdkafka) for a secured cluster. Replication:
    `replication`, or min(3, brokers); min.insync.replicas is 2 whenever that is
    possible, so with producers' acks=all an acknowledged message is on two brokers."""
    from confluent_kafka.admin import AdminClient, NewTopic

    settings = {"bootstrap.servers": client} if isinstance(client, str) else dict(client)
    bootstrap = settings["bootstrap.servers"]
    admin = AdminClient(settings)
    try:
        meta = admin.list_topics(timeout=timeout)
    except Exception as exc:  # noqa: BLE001
        raise ServiceUnavailable(
            f"cannot reach Kafka at {bootstrap} ({exc}); run `auth-kappa stack up` "
            "or set AUTH_KAFKA") from None
    wanted = [t for t in topics if t not in meta.topics]
    if not wanted:
        return []
    factor = replication or min(3, len(meta.brokers))
    if factor > len(meta.brokers):
        raise ServiceUnavailable(f"replication {factor} needs {factor} brokers; Kafka at "
                                 f"{bootstrap} has {len(meta.brokers)} (set AUTH_REPLICATION)")
    extra = {"min.insync.replicas": str(min(2, factor))}
    futures = admin.create_topics([NewTopic(t, partitions, factor, config=extra)
                                   for t in wanted], operation_timeout=timeout)
    for topic, fut in futures.items():
        try:
            fut.result()
        except Exception as exc:  # noqa: BLE001
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise ServiceUnavailable(f"could not create topic {topic}: {exc}") from None
    return wanted


def delete_topics(bootstrap: str, topics: Iterable[str] = (), contains: str = "") -> None:
    """Delete the named topics, and with `contains` every topic whose name holds it
    (clean-up after a benchmark or a test: failures are ignored)."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = list(topics)
    if contains:
        names += [t for t in admin.list_topics(timeout=15).topics if contains in t]
    if not names:
        return
    for fut in admin.delete_topics(names, operation_timeout=30).values():
        try:
            fut.result(timeout=30)
        except Exception:  # noqa: BLE001 - clean-up only
            pass
