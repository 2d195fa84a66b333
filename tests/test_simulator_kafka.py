"""The simulator's Kafka sink against the real local broker: same messages as the files."""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from auth_kappa.cli.main import main
from auth_kappa.config import UTILITIES, Config

pytestmark = pytest.mark.stack

ARGS = ["--meters", "200", "--duration", "1m", "--seed", "21", "--late-fraction", "0.02",
        "--duplicate-fraction", "0.02", "--malformed-fraction", "0.02", "--late-delay", "20s"]


async def consume(bootstrap: str, topics: list[str], expected: int,
                  timeout: float = 60.0) -> dict[str, list[tuple[bytes, bytes, int]]]:
    """All messages of `topics` as (key, value, partition), per topic in partition order."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    got: dict[str, list[tuple[bytes, bytes, int]]] = defaultdict(list)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while sum(map(len, got.values())) < expected and loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=50_000)
            for tp, records in batches.items():
                got[tp.topic] += [(r.key, r.value, tp.partition) for r in records]
    finally:
        await consumer.stop()
    return got


def delete_topics(bootstrap: str, topics: list[str]) -> None:
    from confluent_kafka.admin import AdminClient

    for fut in AdminClient({"bootstrap.servers": bootstrap}).delete_topics(topics).values():
        try:
            fut.result(timeout=30)
        except Exception:  # noqa: BLE001 - cleanup only
            pass


@pytest.mark.parametrize("fmt", ["csv", "json"])
async def test_kafka_gets_the_same_messages_as_the_files(stack: Config, unique: str,
                                                          tmp_path: Path, fmt: str) -> None:
    prefix = f"simtest-{unique}-"
    topics = [f"{prefix}{u}" for u in UTILITIES]
    try:
        assert main(["simulate", "--quiet", "--to", "kafka", "--format", fmt,
                     "--topic-prefix", prefix, "--kafka", stack.kafka,
                     "--out", str(tmp_path / "k"), *ARGS]) == 0
        assert main(["simulate", "--quiet", "--format", fmt, "--out", str(tmp_path / "f"),
                     *ARGS]) == 0
        kafka_manifest = json.loads((tmp_path / "k" / "manifest.json").read_text())
        file_manifest = json.loads((tmp_path / "f" / "manifest.json").read_text())
        assert kafka_manifest["utilities"] == file_manifest["utilities"]
        assert kafka_manifest["sink"]["delivery_errors"] == 0
        for name in ("registry.parquet", "ground_truth.parquet"):
            assert pq.read_table(tmp_path / "k" / name).equals(pq.read_table(tmp_path / "f" / name))

        expected = sum(c["messages"] for c in file_manifest["utilities"].values())
        got = await consume(stack.kafka, topics, expected)
        assert sum(map(len, got.values())) == expected
        truth = pq.read_table(tmp_path / "f" / "ground_truth.parquet").to_pylist()
        ext = "csv" if fmt == "csv" else "jsonl"
        for u, topic in zip(UTILITIES, topics, strict=True):
            lines = (tmp_path / "f" / f"{u}.{ext}").read_bytes().split(b"\n")[:-1]
            assert Counter(v for _, v, _ in got[topic]) == Counter(lines)
            # Key = service_id of the reading (for malformed messages: of the reading it
            # replaced), and each meter's messages arrive in the file's order.
            key_at = {t["position"]: t["service_id"].encode() for t in truth
                      if t["utility"] == u and t["kind"] == "malformed"}
            per_key_file: dict[bytes, list[bytes]] = defaultdict(list)
            for i, line in enumerate(lines):
                sid = key_at.get(i) or (line.split(b",")[0] if fmt == "csv"
                                        else json.loads(line)["service_id"].encode())
                per_key_file[sid].append(line)
            per_key_kafka: dict[bytes, list[bytes]] = defaultdict(list)
            partitions: dict[bytes, set[int]] = defaultdict(set)
            for key, value, partition in got[topic]:
                per_key_kafka[key].append(value)
                partitions[key].add(partition)
            assert per_key_kafka == per_key_file
            assert all(len(p) == 1 for p in partitions.values())
    finally:
        delete_topics(stack.kafka, topics)


def test_delivery_errors_are_counted_and_exit_nonzero(stack: Config, unique: str, tmp_path: Path,
                                                      capfd: pytest.CaptureFixture[str]) -> None:
    """A broker that refuses the messages (topics capped at 64-byte batches) fails the run."""
    from confluent_kafka.admin import AdminClient, NewTopic

    prefix = f"simtest-{unique}-"
    topics = [f"{prefix}{u}" for u in UTILITIES]
    admin = AdminClient({"bootstrap.servers": stack.kafka})
    futures = admin.create_topics([NewTopic(t, 1, 1, config={"max.message.bytes": "64"})
                                   for t in topics])
    for fut in futures.values():
        fut.result(timeout=30)
    try:
        code = main(["simulate", "--to", "kafka", "--topic-prefix", prefix, "--kafka", stack.kafka,
                     "--out", str(tmp_path), "--meters", "20", "--duration", "10s", "--quiet"])
        err = capfd.readouterr().err
        assert code == 3
        assert err.count("\n") == 1 and "were not delivered to Kafka" in err
        manifest = json.loads((tmp_path / "manifest.json").read_text())
        assert manifest["sink"]["delivery_errors"] == manifest["sink"]["produced"] > 0
    finally:
        delete_topics(stack.kafka, topics)
