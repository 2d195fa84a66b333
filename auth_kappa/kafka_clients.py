"""How every Kafka client of ours connects: the bootstrap servers and, for a secured
cluster, the security protocol, SASL user and CA file (AUTH_KAFKA_*), in the spelling of
each client library we use (librdkafka for admin and bulk produce, aiokafka for the
consumers, Faust for the worker's app)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from auth_kappa.config import Config


def _sasl(config: Config) -> bool:
    return config.kafka_security_protocol.upper().startswith("SASL")


def _ssl(config: Config) -> bool:
    return config.kafka_security_protocol.upper().endswith("SSL")


def librdkafka(config: Config) -> dict[str, Any]:
    """confluent-kafka Producer, Consumer and AdminClient settings."""
    out: dict[str, Any] = {"bootstrap.servers": config.kafka,
                           "security.protocol": config.kafka_security_protocol.lower()}
    if _sasl(config):
        out.update({"sasl.mechanism": config.kafka_sasl_mechanism,
                    "sasl.username": config.kafka_sasl_username,
                    "sasl.password": config.kafka_sasl_password})
    if _ssl(config) and config.kafka_ca_file:
        out["ssl.ca.location"] = config.kafka_ca_file
    return out


def aiokafka(config: Config) -> dict[str, Any]:
    """AIOKafkaConsumer / AIOKafkaProducer keyword arguments."""
    out: dict[str, Any] = {"bootstrap_servers": config.kafka,
                           "security_protocol": config.kafka_security_protocol.upper()}
    if _sasl(config):
        out.update({"sasl_mechanism": config.kafka_sasl_mechanism,
                    "sasl_plain_username": config.kafka_sasl_username,
                    "sasl_plain_password": config.kafka_sasl_password})
    if _ssl(config):
        out["ssl_context"] = _ssl_context(config)
    return out


def _ssl_context(config: Config) -> Any:
    from aiokafka.helpers import create_ssl_context

    return create_ssl_context(cafile=config.kafka_ca_file or None)


def faust_credentials(config: Config) -> Any:
    """Faust's broker_credentials (None for PLAINTEXT)."""
    import faust

    ssl = _ssl_context(config) if _ssl(config) else None
    if _sasl(config):
        return faust.SASLCredentials(username=config.kafka_sasl_username,
                                     password=config.kafka_sasl_password,
                                     mechanism=config.kafka_sasl_mechanism, ssl_context=ssl)
    return faust.SSLCredentials(ssl) if ssl else None


def faust_broker(config: Config) -> str:
    """Faust's broker URL: every bootstrap server, so any one of them may be down."""
    return ";".join(f"kafka://{h.strip()}" for h in config.kafka.split(",") if h.strip())


def replication(config: Config) -> int:
    """Replication for topics Faust creates itself: AUTH_REPLICATION, else one per listed
    bootstrap server up to 3 (list every broker in AUTH_KAFKA on a cluster)."""
    return config.replication or min(3, len(config.kafka.split(",")))
