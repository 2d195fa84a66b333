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
from auth_kappa.kafka_admin import delete_topics

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


# ---- frames (--frame-size): many readings per message, grouped by murmur2 partition

FRAME_ARGS = ["--meters", "300", "--duration", "2m", "--seed", "33", "--late-fraction", "0.02",
              "--duplicate-fraction", "0.02", "--malformed-fraction", "0.01",
              "--late-delay", "20s"]


def test_vectorised_murmur2_is_kafkas_partitioner() -> None:
    import os
    import random

    import numpy as np
    from aiokafka.partitioner import murmur2 as reference

    from auth_kappa.topology.partitioner import murmur2, partitions_of

    rnd = random.Random(5)
    keys = [os.urandom(rnd.randint(0, 40)) for _ in range(3000)] + [b"", b"a", b"ab", b"abc"]
    assert (murmur2(keys) == np.array([reference(k) & 0xFFFFFFFF for k in keys],
                                      np.uint32)).all()
    assert partitions_of(keys, 7).tolist() == [(reference(k) & 0x7FFFFFFF) % 7 for k in keys]


def _reading(fields: list) -> tuple:
    sid, name, mtype, start, state, cons, end = fields
    return (sid, name, mtype, int(start), state, float(cons), int(end))


@pytest.mark.parametrize("fmt", ["csv", "json"])
async def test_frames_carry_the_same_readings_as_the_files(stack: Config, unique: str,
                                                           tmp_path: Path, fmt: str) -> None:
    from auth_kappa import Engine
    from auth_kappa.topology.frames import decode_frame, is_frame
    from auth_kappa.topology.partitioner import partitions_of

    prefix = f"simtest-{unique}-"
    topics = [f"{prefix}{u}" for u in UTILITIES]
    size = 500
    try:
        assert main(["simulate", "--quiet", "--to", "kafka", "--format", fmt, "--frame-size",
                     str(size), "--partitions", "3", "--topic-prefix", prefix,
                     "--kafka", stack.kafka, "--out", str(tmp_path / "k"), *FRAME_ARGS]) == 0
        assert main(["simulate", "--quiet", "--format", fmt, "--out", str(tmp_path / "f"),
                     *FRAME_ARGS]) == 0
        km = json.loads((tmp_path / "k" / "manifest.json").read_text())
        fm = json.loads((tmp_path / "f" / "manifest.json").read_text())
        # the manifest still counts readings and (logical) messages; Kafka messages apart
        assert km["utilities"] == fm["utilities"]
        facts = km["sink"]["frames"]
        assert km["sink"]["delivery_errors"] == 0 and facts["frame_size"] == size
        assert km["sink"]["compression"] == "none"  # frame bodies are lz4 already
        for u in UTILITIES:
            c = fm["utilities"][u]
            assert facts["frame_readings"][u] + facts["single_messages"][u] == c["messages"]
            assert facts["single_messages"][u] == c["malformed"] > 0
            assert facts["frames"][u] >= -(-facts["frame_readings"][u] // size)

        expected = sum(facts["kafka_messages"].values())
        got = await consume(stack.kafka, topics, expected)
        assert sum(map(len, got.values())) == expected
        truth = pq.read_table(tmp_path / "f" / "ground_truth.parquet").to_pylist()
        ext = "csv" if fmt == "csv" else "jsonl"
        for u, topic in zip(UTILITIES, topics, strict=True):
            lines = (tmp_path / "f" / f"{u}.{ext}").read_bytes().split(b"\n")[:-1]
            bad_at = {t["position"] for t in truth if t["utility"] == u and t["kind"] == "malformed"}
            valid = [_reading(ln.decode().split(",") if fmt == "csv" else
                              [json.loads(ln)[k] for k in json.loads(ln)])
                     for i, ln in enumerate(lines) if i not in bad_at]
            framed: list[tuple] = []
            singles: list[bytes] = []
            per_meter: dict[str, list[tuple]] = defaultdict(list)
            for key, value, partition in got[topic]:
                if not is_frame(value):
                    singles.append(value)
                    continue
                assert key is None  # a frame holds many meters: no key
                rows = [tuple(r.values()) for r in decode_frame(value).to_pylist()]
                assert 0 < len(rows) <= size
                sids = [r[0].encode() for r in rows]
                assert set(partitions_of(sids, 3).tolist()) == {partition}
                framed += rows
                for r in rows:
                    per_meter[r[0]].append(r)
            # every valid reading (late and duplicate copies included) is a frame row,
            # with exactly the value float() reads from its line
            assert Counter(framed) == Counter(valid)
            assert Counter(singles) == Counter(lines[i] for i in bad_at)
            # a meter's readings keep the file's order (one partition, stream order)
            file_order: dict[str, list[tuple]] = defaultdict(list)
            for r in valid:
                file_order[r[0]].append(r)
            assert per_meter == file_order

            # end to end: the embedded engine reads the frames like the files
            by_frames, by_files = Engine.embedded("1m"), Engine.embedded("1m")
            # each partition's frames in its own order, as the live path reads them
            for p in sorted({p for _, _, p in got[topic]}):
                by_frames.ingest([v for _, v, q in got[topic] if q == p], utility=u,
                                 partition=p)
            by_files.ingest(tmp_path / "f" / f"{u}.{ext}")
            for e in (by_frames, by_files):
                e.flush()
            assert by_frames.stats.quarantined == by_files.stats.quarantined == len(bad_at)
            assert by_frames.stats.accepted == by_files.stats.accepted == \
                fm["utilities"][u]["valid_readings"]
            a, b = by_frames.windows("meter", u), by_files.windows("meter", u)
            assert a.equals(b)
            sa, sb = by_frames.windows("state", u), by_files.windows("state", u)
            assert sa[["key", "window_start", "count"]].equals(sb[["key", "window_start", "count"]])
            assert sa["sum"].to_numpy() == pytest.approx(sb["sum"].to_numpy(), rel=1e-12)
    finally:
        delete_topics(stack.kafka, topics)


def test_frame_size_is_for_kafka_only(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code = main(["simulate", "--frame-size", "500", "--out", str(tmp_path), "--meters", "5",
                 "--duration", "10s"])
    err = capfd.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--frame-size" in err
    assert not (tmp_path / "manifest.json").exists()


def test_frame_boundaries_do_not_depend_on_chunking(stack: Config, unique: str,
                                                    tmp_path: Path) -> None:
    """Same arguments, same frames: chunk size and pace only change when they are sent."""
    from simulators import FaultSpec, SimSpec, simulate
    from simulators.sinks.frames import FrameKafkaSink

    class Recording(FrameKafkaSink):
        def _send(self, topic, value, key, partition):  # record instead of producing
            self.sent.append((topic, value, key, partition))

    prefix = f"simtest-{unique}-"
    spec = SimSpec(meters=60, duration=120, seed=8,
                   faults=FaultSpec(late_fraction=0.05, late_delay=25, duplicate_fraction=0.05,
                                    malformed_fraction=0.05))
    runs = []
    try:
        for i, chunk in enumerate((7, 1000, None)):
            sink = Recording(stack.kafka, 50, topic_prefix=prefix, partitions=2)
            sink.sent = []
            simulate(spec, sink, tmp_path / str(i), chunk=chunk)
            runs.append(sorted(sink.sent, key=lambda s: (s[0], s[3], s[2] is None)))
        assert runs[0] == runs[1] == runs[2]
        assert sum(s[2] is None for s in runs[0]) >= 3 * 2 * (60 * 24 // 2 // 50)
    finally:
        delete_topics(stack.kafka, [f"{prefix}{u}" for u in UTILITIES])
