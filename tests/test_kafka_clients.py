"""Kafka client settings (auth_kappa/kafka_clients.py) against a real secured listener: the
stack's SASL_PLAINTEXT port takes our settings and refuses a wrong password; topics get
the replication their cluster can hold, and a clear line when it cannot."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaProducer

from auth_kappa import kafka_clients
from auth_kappa.config import Config
from auth_kappa.errors import ServiceUnavailable, UserError
from auth_kappa.kafka_admin import delete_topics, ensure_topics, group_consumer
from auth_kappa.stack.kafka_broker import SASL_OFFSET, SASL_USER, sasl_password

pytestmark = pytest.mark.stack


def _secured(stack: Config, password: str) -> Config:
    host, port = stack.kafka_host_port
    return stack.with_(kafka=f"{host}:{port + SASL_OFFSET}",
                       kafka_security_protocol="SASL_PLAINTEXT",
                       kafka_sasl_username=SASL_USER, kafka_sasl_password=password)


def test_a_secured_listener_serves_our_clients_and_refuses_a_wrong_password(stack, unique):
    from auth_kappa.stack.kafka_broker import KafkaBroker

    if KafkaBroker(stack).own_pid() is None:   # make test starts its own: never skipped there
        pytest.skip("Kafka was not started by this stack, so its SASL password is not ours")
    config = _secured(stack, sasl_password(stack))
    topic = f"sasl-{unique}"
    try:
        assert ensure_topics(kafka_clients.librdkafka(config), [topic], 1) == [topic]

        async def round_trip() -> list[bytes]:
            producer = AIOKafkaProducer(**kafka_clients.aiokafka(config), acks="all",
                                        enable_idempotence=True)
            await producer.start()
            try:
                await producer.send_and_wait(topic, b"over sasl", key=b"k")
            finally:
                await producer.stop()
            consumer = group_consumer(config, f"sasl-{unique}")
            consumer.subscribe([topic])
            await consumer.start()
            try:
                got = await consumer.getmany(timeout_ms=15_000)
                return [r.value for batch in got.values() for r in batch]
            finally:
                await consumer.stop()

        assert asyncio.run(round_trip()) == [b"over sasl"]
        wrong = _secured(stack, "not-the-password")
        with pytest.raises(ServiceUnavailable, match="cannot reach Kafka"):
            ensure_topics(kafka_clients.librdkafka(wrong), [f"{topic}-x"], 1, timeout=5)
    finally:
        delete_topics(stack.kafka, [topic])


def test_replication_follows_the_cluster_and_refuses_more_than_it_has(stack, unique):
    from confluent_kafka.admin import AdminClient

    topic = f"repl-{unique}"
    try:
        ensure_topics(stack.kafka, [topic], 2)
        meta = AdminClient({"bootstrap.servers": stack.kafka}).list_topics(timeout=10)
        brokers = len(meta.brokers)
        assert {len(p.replicas) for p in meta.topics[topic].partitions.values()} == \
            {min(3, brokers)}
        with pytest.raises(ServiceUnavailable, match="AUTH_REPLICATION"):
            ensure_topics(stack.kafka, [f"{topic}-x"], 1, replication=brokers + 1)
    finally:
        delete_topics(stack.kafka, [topic])


def test_each_library_gets_the_same_security_settings():
    c = Config.load(env={}, kafka="a:1,b:2", kafka_security_protocol="SASL_SSL",
                    kafka_sasl_mechanism="SCRAM-SHA-512", kafka_sasl_username="u",
                    kafka_sasl_password="p", kafka_ca_file="")
    rd = kafka_clients.librdkafka(c)
    assert (rd["bootstrap.servers"], rd["security.protocol"], rd["sasl.mechanism"],
            rd["sasl.username"], rd["sasl.password"]) == ("a:1,b:2", "sasl_ssl",
                                                          "SCRAM-SHA-512", "u", "p")
    aio = kafka_clients.aiokafka(c)
    assert (aio["security_protocol"], aio["sasl_mechanism"], aio["sasl_plain_username"],
            aio["sasl_plain_password"]) == ("SASL_SSL", "SCRAM-SHA-512", "u", "p")
    assert aio["ssl_context"] is not None
    creds = kafka_clients.faust_credentials(c)
    assert (creds.username, creds.password) == ("u", "p")
    assert kafka_clients.faust_broker(c) == "kafka://a:1;kafka://b:2"
    assert kafka_clients.faust_credentials(Config.load(env={})) is None


def test_a_stack_cluster_is_remembered_and_never_shares_ports_with_one_node(tmp_path):
    from auth_kappa.stack import process
    from auth_kappa.stack.kafka_broker import (
        KafkaBroker,
        KafkaCluster,
        kafka_service,
        save_nodes,
    )
    from auth_kappa.stack.manager import status

    config = Config.load(env={}, kafka="127.0.0.1:1", stack_dir=str(tmp_path))
    assert isinstance(kafka_service(config), KafkaBroker)        # nothing started yet
    save_nodes(config, 3)                                          # `stack up --kafka-brokers 3`
    cluster = kafka_service(config)
    assert isinstance(cluster, KafkaCluster)
    ports = [p for m in cluster.members for p in (m.port, m.controller_port, m.sasl_port)]
    assert len(set(ports)) == 9 and {m.port for m in cluster.members} == {1, 2, 3}
    assert [s.address for s in status(config, ["kafka"])] == ["127.0.0.1:1,127.0.0.1:2,127.0.0.1:3"]
    assert isinstance(kafka_service(config.with_(kafka_brokers=1)), KafkaBroker)   # the flag wins
    single = KafkaBroker(config)
    single.home.mkdir(parents=True, exist_ok=True)
    process.spawn(["sleep", "30"], pidfile=single.pidfile, logfile=single.logfile)
    try:   # a running single node holds port 1 and its data: a cluster must not start over it
        with pytest.raises(UserError, match="stack down kafka"):
            cluster.start()
    finally:
        process.stop(single.pidfile)
