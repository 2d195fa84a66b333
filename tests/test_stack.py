"""The stack's up/status/down round trip, and real traffic through the running stack."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from auth_kappa.config import Config
from auth_kappa.errors import UserError
from auth_kappa.stack import probes, process
from auth_kappa.stack.redis_server import RedisServer
from dashboards import acl, serve
from tests.chaos.services import NO_KAFKA, SECOND_STACK
from tests.support.browser import free_port

CLI = [sys.executable, "-m", "auth_kappa.cli.main"]
KAFKA = f"127.0.0.1:{SECOND_STACK['kafka']}"   # the private stack's, by number (see FIXED)
REDIS_URL = f"redis://127.0.0.1:{SECOND_STACK['redis']}/0"


def _cli(args: list[str], env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.stack
@pytest.mark.slow
def test_stack_round_trip_on_other_ports(tmp_path: Path):
    """A second, private stack: up twice (idempotent), status, down stops exactly its pids."""
    env = {**os.environ, "AUTH_STACK_DIR": str(tmp_path / "stack"),
           "AUTH_KAFKA": KAFKA, "AUTH_REDIS_URL": REDIS_URL,
           "AUTH_S3_ENDPOINT": f"http://127.0.0.1:{SECOND_STACK['s3']}", "AUTH_PARTITIONS": "2"}
    try:
        first = _cli(["stack", "up"], env)
        assert first.returncode == 0, first.stderr + first.stdout
        assert "created: electricity, gas, water" in first.stdout
        pids = {p.parent.name: process.read_pid(p) for p in (tmp_path / "stack").glob("*/*.pid")}
        assert set(pids) == {"kafka", "redis", "seaweedfs"} and all(pids.values())

        again = _cli(["stack", "up"], env)
        assert again.returncode == 0 and again.stdout.count("already answering") == 3

        status = _cli(["stack", "status"], env)
        assert status.returncode == 0 and status.stdout.count("running (pid") == 3

        assert probes.kafka_ready(KAFKA)
        assert probes.redis_ping(REDIS_URL)
        # the shared stack must be untouched by this private one
        assert probes.port_open("127.0.0.1", 9092) and probes.port_open("127.0.0.1", 6379)
    finally:
        down = _cli(["stack", "down"], env)
    assert down.returncode == 0, down.stderr
    assert all(not process.is_alive(pid) for pid in pids.values())
    after = _cli(["stack", "status"], env)
    assert after.returncode == 1 and after.stdout.count("stopped") == 3
    assert probes.kafka_ready("127.0.0.1:9092"), "down must not stop processes it did not start"


def test_status_names_each_service_and_fails_when_down(tmp_path: Path):
    env = {**os.environ, "AUTH_STACK_DIR": str(tmp_path), "AUTH_KAFKA": "127.0.0.1:1",
           "AUTH_REDIS_URL": "redis://127.0.0.1:2/0", "AUTH_S3_ENDPOINT": "http://127.0.0.1:3"}
    out = _cli(["stack", "status"], env, timeout=60)
    assert out.returncode == 1
    assert [ln.split()[0] for ln in out.stdout.splitlines()] == ["redis", "s3", "kafka"]


def test_bad_arguments_are_one_line(tmp_path: Path):
    out = _cli(["stack", "sideways"], {**os.environ})
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr


@pytest.mark.stack
async def test_produce_consume_real_kafka(stack, unique):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from auth_kappa.kafka_admin import ensure_topics

    topic = f"t-{unique}"
    assert ensure_topics(stack.kafka, [topic], 2) == [topic]
    sent = {f"k{i}".encode(): f"v{i}".encode() for i in range(500)}
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka)
    await producer.start()
    try:
        for k, v in sent.items():
            await producer.send(topic, v, key=k)
        await producer.flush()
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=stack.kafka,
                                auto_offset_reset="earliest", group_id=f"g-{unique}")
    await consumer.start()
    got: dict[bytes, bytes] = {}
    try:
        while len(got) < len(sent):
            batch = await consumer.getmany(timeout_ms=5000)
            assert batch, "consumer timed out before reading everything back"
            for records in batch.values():
                got.update((r.key, r.value) for r in records)
    finally:
        await consumer.stop()
    assert got == sent


@pytest.mark.stack
def test_redis_and_s3_answer(stack, unique):
    import redis

    from auth_kappa.stack.s3admin import s3_client

    r = redis.Redis.from_url(stack.redis_url)
    r.set(f"test:{unique}", "1", ex=30)
    assert r.get(f"test:{unique}") == b"1"
    s3 = s3_client(stack.s3_endpoint, stack.s3_access_key, stack.s3_secret_key, stack.s3_region)
    s3.put_object(Bucket=stack.s3_bucket, Key=f"tests/{unique}", Body=b"hello")
    assert s3.get_object(Bucket=stack.s3_bucket, Key=f"tests/{unique}")["Body"].read() == b"hello"
    s3.delete_object(Bucket=stack.s3_bucket, Key=f"tests/{unique}")


def _private_env(tmp_path: Path, path: str) -> dict[str, str]:
    return {**os.environ, "PATH": path, "AUTH_STACK_DIR": str(tmp_path / "stack"),
            "AUTH_CACHE_DIR": str(tmp_path / "cache"), "AUTH_KAFKA": f"127.0.0.1:{NO_KAFKA}"}


def test_missing_java_is_one_line_with_the_fix(tmp_path: Path):
    empty = tmp_path / "bin"
    empty.mkdir()
    out = _cli(["stack", "up", "kafka"], _private_env(tmp_path, str(empty)), timeout=60)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0
    assert "Java 17" in out.stderr and "apt-get install" in out.stderr


def test_missing_maven_is_one_line_with_the_fix(tmp_path: Path):
    import shutil

    only_java = tmp_path / "bin"
    only_java.mkdir()
    (only_java / "java").symlink_to(shutil.which("java"))
    out = _cli(["stack", "up", "kafka"], _private_env(tmp_path, str(only_java)), timeout=60)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0 and "mvn" in out.stderr.lower()
    assert "apt-get install -y maven" in out.stderr


def test_unreachable_kafka_for_simulate_is_one_line(tmp_path: Path):
    env = {**os.environ, "AUTH_KAFKA": "127.0.0.1:1"}
    out = _cli(["simulate", "--meters", "5", "--duration", "1m", "--to", "kafka",
                "--out", str(tmp_path)], env, timeout=60)
    assert out.returncode == 3 and "Traceback" not in out.stderr
    assert "auth-kappa stack up" in out.stderr


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs Debian's redis-server")
def test_stack_up_keeps_the_dashboards_read_only_user_across_restarts(tmp_path: Path):
    """ACL users live in Redis' memory: every `stack up` re-applies the dashboard's user with
    the password kept under the stack dir, and the dashboard reads with it by default."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTH_DASHBOARD_")}
    env |= {"AUTH_STACK_DIR": str(tmp_path / "stack"),
            "AUTH_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    config = Config.load(env=env)
    pidfile = RedisServer(config).pidfile
    try:
        up = _cli(["stack", "up", "redis"], env, timeout=60)
        assert up.returncode == 0, up.stderr + up.stdout
        assert "read-only user dashboard for the dashboard" in up.stdout
        kept = acl.stack_user_file(config)
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600
        url = kept.read_text().strip()
        password = acl.stack_password(config)
        assert url.startswith("redis://dashboard:") and password and password not in up.stdout
        assert serve.dashboard_url(config, env={}) == url
        _assert_read_only(url)

        process.stop(pidfile)   # Redis restarts (ours, private): the ACL user is gone ...
        again = _cli(["stack", "up", "redis"], env, timeout=60)
        assert again.returncode == 0 and "starting redis" in again.stdout
        _assert_read_only(url)  # ... and `stack up` brought it back with the same password

        # the explicit command still works, and keeps the stack's password for this user
        made = _cli(["dashboard", "create-redis-user"], env, timeout=60)
        assert made.returncode == 0, made.stderr
        assert made.stdout.strip().splitlines()[-1] == \
            f'export AUTH_DASHBOARD_REDIS_URL="$(cat {kept})"'
        assert kept.read_text().strip() == url and password not in made.stdout
        _assert_read_only(url)
    finally:
        process.stop(pidfile)
    # AUTH_DASHBOARD_REDIS_URL wins; a Redis other than the stack's never gets its user
    assert serve.dashboard_url(config, env={"AUTH_DASHBOARD_REDIS_URL": "redis://h:1/0"}) \
        == "redis://h:1/0"
    other = config.with_(redis_url="redis://127.0.0.1:1/0")
    with pytest.raises(UserError, match="--allow-writable-redis"):   # no silent fallback
        serve.dashboard_url(other, env={})
    assert serve.dashboard_url(other, env={}, allow_writable=True) == "redis://127.0.0.1:1/0"


def _assert_read_only(url: str) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=5)
    try:
        assert client.get("auth:namespace") is None
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.set("auth:namespace", "v9")
    finally:
        client.close()
