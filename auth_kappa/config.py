"""One configuration object for every runtime: defaults point at the local stack.

Precedence: explicit keyword/flag > environment variable > default. Keeping it one
frozen dataclass means the worker, replay, dashboard and tests can never disagree
on where the services are or how windows are cut.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from auth_kappa.errors import UserError
from auth_kappa.state.layout import POINTER
from auth_kappa.topology.schema import UTILITIES
from auth_kappa.topology.windows import WindowSpec
from auth_kappa.units import parse_duration

__all__ = ["UTILITIES", "Config", "parse_duration"]

def _bool(text: str) -> bool:
    return str(text).strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Config:
    """Where the services are and how the stream is cut; see docs in README."""

    kafka: str = "127.0.0.1:9092"
    kafka_brokers: int = 0            # stack: Kafka nodes to run (0: as last started, or 1)
    replication: int = 0              # topics' replication factor (0: min(3, brokers))
    kafka_security_protocol: str = "PLAINTEXT"   # or SSL, SASL_PLAINTEXT, SASL_SSL
    kafka_sasl_mechanism: str = "PLAIN"          # or SCRAM-SHA-256, SCRAM-SHA-512
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = ""
    kafka_ca_file: str = ""           # CA bundle for SSL / SASL_SSL (default: the system's)
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_cluster: bool = False       # AUTH_REDIS_URL names a node of a Redis Cluster
    s3_endpoint: str = "http://127.0.0.1:8333"
    s3_bucket: str = "auth"
    s3_access_key: str = "auth"
    s3_secret_key: str = "auth-secret"
    s3_region: str = "us-east-1"
    topics: tuple[str, ...] = UTILITIES
    partitions: int = 4
    grace: float = 30.0
    idle_timeout: float = 30.0
    max_future: float = 900.0         # end_ts further ahead of the record time: quarantined
    windows: str = "1m,1h"
    retention: str = ""               # per-state windows, e.g. "1m=48h,1h=90d"
    meter_retention: str = ""         # per-meter windows, e.g. "1m=2h,1h=7d"
    namespace: str | None = None      # None: follow the auth:namespace pointer (default v1)
    topic_prefix: str = ""
    group: str = "auth-kappa"         # consumer group; also names the offsets in Redis
    commit_interval: float = 0.25
    session_timeout: float = 10.0     # how soon the group notices a dead worker
    batch_size: int = 10_000
    batch_wait: float = 0.2
    # the live worker's Kafka client: "aiokafka" (getmany into columns), "confluent"
    # (librdkafka's consume(n), runtime/confluent_consumer.py), or "auto": the faster one
    # for the topics' message sizes, sampled at start (runtime/consumer_choice.py)
    consumer: str = "auto"
    stack_dir: str = ".stack"
    cache_dir: str = ".cache"
    pointer: str = POINTER            # Redis key naming the namespace readers follow
    archive: bool = True              # workers also archive every message to S3
    archive_process: bool = True      # ... from a child process (its own core), else a task
    archive_roll_bytes: int = 64 * 1024 * 1024
    archive_roll_seconds: float = 60.0
    archive_buffer_bytes: int = 256 * 1024 * 1024  # past this, pause consuming (S3 down)
    archive_retry_max: float = 30.0   # longest back-off between upload attempts
    insights: bool = True             # gaps and leaks alongside the windows (README, Insights)
    gap_after: float = 300.0          # a meter silent this long (event time) opens a gap
    # gallons in every hour of 24: a continuous-flow leak, "9.5" or per meter type
    # ("9.5,business=14"). Above the quietest hour of normal use in the simulator's
    # realistic profile (up to 7.6), below injected leaks (10+ on top of normal use)
    leak_flow: str = "9.5"
    tariff: str = ""                  # time-of-use prices (TOML); empty: the example tariff
    extra: Mapping[str, Any] = field(default_factory=dict)

    # env var name -> (field, parser)
    ENV = {
        "AUTH_KAFKA": ("kafka", str),
        "AUTH_KAFKA_BROKERS": ("kafka_brokers", int),
        "AUTH_REPLICATION": ("replication", int),
        "AUTH_KAFKA_SECURITY_PROTOCOL": ("kafka_security_protocol", str),
        "AUTH_KAFKA_SASL_MECHANISM": ("kafka_sasl_mechanism", str),
        "AUTH_KAFKA_SASL_USERNAME": ("kafka_sasl_username", str),
        "AUTH_KAFKA_SASL_PASSWORD": ("kafka_sasl_password", str),
        "AUTH_KAFKA_CA_FILE": ("kafka_ca_file", str),
        "AUTH_REDIS_URL": ("redis_url", str),
        "AUTH_REDIS_CLUSTER": ("redis_cluster", _bool),
        "AUTH_S3_ENDPOINT": ("s3_endpoint", str),
        "AUTH_S3_BUCKET": ("s3_bucket", str),
        "AUTH_S3_ACCESS_KEY": ("s3_access_key", str),
        "AUTH_S3_SECRET_KEY": ("s3_secret_key", str),
        "AUTH_S3_REGION": ("s3_region", str),
        "AUTH_PARTITIONS": ("partitions", int),
        "AUTH_GRACE": ("grace", lambda v: parse_duration(v, name="AUTH_GRACE")),
        "AUTH_IDLE_TIMEOUT": ("idle_timeout", lambda v: parse_duration(v, name="AUTH_IDLE_TIMEOUT")),
        "AUTH_MAX_FUTURE": ("max_future", lambda v: parse_duration(v, name="AUTH_MAX_FUTURE")),
        "AUTH_WINDOWS": ("windows", str),
        "AUTH_RETENTION": ("retention", str),
        "AUTH_METER_RETENTION": ("meter_retention", str),
        "AUTH_NAMESPACE": ("namespace", str),
        "AUTH_TOPIC_PREFIX": ("topic_prefix", str),
        "AUTH_GROUP": ("group", str),
        "AUTH_COMMIT_INTERVAL": ("commit_interval",
                                 lambda v: parse_duration(v, name="AUTH_COMMIT_INTERVAL")),
        "AUTH_BATCH_SIZE": ("batch_size", int),
        "AUTH_CONSUMER": ("consumer", str),
        "AUTH_SESSION_TIMEOUT": ("session_timeout",
                                 lambda v: parse_duration(v, name="AUTH_SESSION_TIMEOUT")),
        "AUTH_STACK_DIR": ("stack_dir", str),
        "AUTH_CACHE_DIR": ("cache_dir", str),
        "AUTH_POINTER": ("pointer", str),
        "AUTH_ARCHIVE": ("archive", _bool),
        "AUTH_ARCHIVE_PROCESS": ("archive_process", _bool),
        "AUTH_ARCHIVE_ROLL_BYTES": ("archive_roll_bytes", int),
        "AUTH_ARCHIVE_ROLL_SECONDS": ("archive_roll_seconds",
                                      lambda v: parse_duration(v, name="AUTH_ARCHIVE_ROLL_SECONDS")),
        "AUTH_ARCHIVE_BUFFER_BYTES": ("archive_buffer_bytes", int),
        "AUTH_INSIGHTS": ("insights", _bool),
        "AUTH_GAP_AFTER": ("gap_after", lambda v: parse_duration(v, name="AUTH_GAP_AFTER")),
        "AUTH_LEAK_FLOW": ("leak_flow", str),
        "AUTH_TARIFF": ("tariff", str),
        "AUTH_ARCHIVE_RETRY_MAX": ("archive_retry_max",
                                   lambda v: parse_duration(v, name="AUTH_ARCHIVE_RETRY_MAX")),
    }

    def __post_init__(self) -> None:
        self.window_specs()  # fail at load time, not in a worker
        if self.grace < 0:
            raise UserError(f"grace must be zero or positive, got {self.grace}s")
        if self.partitions < 1:
            raise UserError(f"partitions must be at least 1, got {self.partitions}")
        if self.kafka_brokers < 0 or self.replication < 0:
            raise UserError("kafka_brokers and replication must be zero (automatic) or more")
        protocols = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
        if self.kafka_security_protocol.upper() not in protocols:
            raise UserError(f"AUTH_KAFKA_SECURITY_PROTOCOL {self.kafka_security_protocol!r}: "
                            f"choose one of {', '.join(protocols)}")
        if self.max_future < 0:
            raise UserError(f"max_future must be zero or positive, got {self.max_future}s")
        if self.consumer not in ("auto", "aiokafka", "confluent"):
            raise UserError(f"AUTH_CONSUMER {self.consumer!r}: choose auto, aiokafka or "
                            "confluent")

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Config:
        """Defaults, then AUTH_* environment variables, then non-None overrides (flags)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for var, (name, parse) in cls.ENV.items():
            if env.get(var, "") != "":
                try:
                    values[name] = parse(env[var])
                except ValueError as exc:
                    raise UserError(f"{var}={env[var]!r} is not valid: {exc}") from None
        known = {f.name for f in fields(cls)}
        for name, value in overrides.items():
            if value is None:
                continue
            if name not in known:
                raise UserError(f"unknown configuration option {name!r}")
            if name in {"grace", "idle_timeout", "max_future", "commit_interval", "session_timeout",
                        "archive_roll_seconds", "archive_retry_max"}:
                value = parse_duration(value, name=name)
            values[name] = value
        return cls(**values)

    @property
    def source_topics(self) -> tuple[str, ...]:
        return tuple(self.prefixed(t) for t in self.topics)

    def prefixed(self, topic: str) -> str:
        return f"{self.topic_prefix}{topic}"

    def utility_of(self, topic: str) -> str:
        return topic[len(self.topic_prefix):] if topic.startswith(self.topic_prefix) else topic

    def window_specs(self) -> tuple[WindowSpec, ...]:
        """Window sizes to compute, each with its event-time retention (tiered defaults)."""
        keep, meter_keep = _per_size(self.retention), _per_size(self.meter_retention)
        sizes = [int(parse_duration(w, name="windows")) for w in self.windows.split(",") if w]
        if not sizes:
            raise UserError("windows: give at least one size, e.g. 1m or 1m,1h")
        return tuple(sorted(WindowSpec.parse(s, keep.get(s), meter_keep.get(s))
                            for s in set(sizes)))

    def with_(self, **changes: Any) -> Config:
        return replace(self, **changes)

    @property
    def kafka_host_port(self) -> tuple[str, int]:
        first = self.kafka.split(",")[0].strip()
        host, _, port = first.rpartition(":")
        return host or "127.0.0.1", int(port or 9092)


def _per_size(text: str) -> dict[int, str]:
    """'1m=48h,1h=90d' -> {60: '48h', 3600: '90d'}."""
    out: dict[int, str] = {}
    for item in filter(None, (x.strip() for x in text.split(","))):
        size, _, keep = item.partition("=")
        if not keep:
            raise UserError(f"retention {item!r}: use SIZE=DURATION, e.g. 1m=48h")
        out[int(parse_duration(size, name="retention size"))] = keep
    return out
