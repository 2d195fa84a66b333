"""Cheap liveness checks that answer True/False and never raise."""

from __future__ import annotations

import socket


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def redis_ping(url: str, timeout: float = 1.0) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=timeout,
                                         socket_connect_timeout=timeout).ping())
    except Exception:  # noqa: BLE001 - any failure means "not answering"
        return False


def kafka_ready(bootstrap: str, timeout: float = 2.0) -> bool:
    """True once the broker serves metadata (KRaft has elected its controller)."""
    from confluent_kafka.admin import AdminClient

    try:
        md = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0,
                          "logger": _quiet_logger()}).list_topics(timeout=timeout)
        return bool(md.brokers)
    except Exception:  # noqa: BLE001
        return False


def s3_ready(endpoint: str, access_key: str, secret_key: str, region: str) -> bool:
    from auth_kappa.stack.s3admin import s3_client

    try:
        s3_client(endpoint, access_key, secret_key, region, timeout=2).list_buckets()
        return True
    except Exception:  # noqa: BLE001
        return False


def _quiet_logger():
    import logging

    log = logging.getLogger("auth_kappa.stack.kafka_probe")
    log.addHandler(logging.NullHandler())
    log.propagate = False
    return log
