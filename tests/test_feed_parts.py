"""A fetch is fed in parts, the worker's event loop turning between them.

Fed whole, a fetch of frames (up to ~1M readings) kept the loop for longer than the
group's session timeout on a busy machine: no heartbeat went out, the worker was dropped
from the group, rejoined, reloaded, and was dropped again, making no progress (seen in
benchmarks/bench_unit_costs.py, frames on a Redis Cluster, under a load average of 7).
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from aiokafka import TopicPartition

from auth_kappa.runtime.kafka_reader import KafkaReader, fetch_parts
from auth_kappa.runtime.kafka_source import KafkaSource
from auth_kappa.runtime.live import LiveRuntime
from auth_kappa.state.redis_store import RedisWindowStore
from auth_kappa.topology.decode import MessageBatch
from auth_kappa.topology.processor import Topology
from tests.support.live import LiveCase

UTILS = ("electricity", "gas", "water")


def test_parts_keep_every_record_in_order_within_the_budget():
    rng = np.random.default_rng(5)
    for _ in range(2000):
        batch = {}
        for p in range(int(rng.integers(0, 4))):
            n = int(rng.integers(1, 30))
            values = [bytes(int(rng.integers(0, 50))) if rng.random() > 0.05 else None
                      for _ in range(n)]
            batch[TopicPartition("t", p)] = MessageBatch(
                values, np.full(n, p, np.int32), np.arange(100, 100 + n, dtype=np.int64),
                np.zeros(n))
        budget = int(rng.integers(1, 200))
        parts = fetch_parts(batch, budget)
        for tp, records in batch.items():
            got = np.concatenate([part[tp].offset for part in parts if tp in part])
            assert got.tolist() == records.offset.tolist()
        for part in parts:   # over the budget by at most the one record that closed it
            sizes = [len(v or b"") for records in part.values() for v in records.values]
            assert sizes and sum(sizes) - sizes[-1] <= budget, (sizes, budget)
        total = sum(len(v or b"") for r in batch.values() for v in r.values)
        assert len(parts) == (1 if batch else 0) or total > budget


@pytest.mark.stack
@pytest.mark.slow
def test_a_fetch_of_frames_is_fed_in_parts_with_the_loop_turning_between(
        stack, tmp_path, unique, monkeypatch):
    """An in-process KafkaSource (real Kafka, real Redis) over a backlog of frames, parts
    of 64 KB: within a fetch, another task runs before every part but the first, and the
    state windows count every reading of the simulator's manifest exactly."""
    case = LiveCase(f"fp{unique}", tmp_path)
    case.create_topics()
    try:
        manifest = case.simulate("--meters", "300", "--duration", "10m", "--seed", "3",
                                 "--frame-size", "500")
        turns, calls = [0], []
        fetch, feed = KafkaReader.fetch, KafkaReader.feed

        async def counted_fetch(self, wait):
            got = await fetch(self, wait)
            calls.append(("fetch", turns[0]))
            return got

        def counted_feed(self, batch, stop_at=None):
            calls.append(("feed", turns[0]))
            return feed(self, batch, stop_at)

        monkeypatch.setattr(KafkaReader, "fetch", counted_fetch)
        monkeypatch.setattr(KafkaReader, "feed", counted_feed)
        config = case.config
        store = RedisWindowStore.from_config(config)
        runtime = LiveRuntime(Topology.from_config(config, live=True), store, emit=None,
                              commit_interval=config.commit_interval)

        async def nothing(acks: bool = True) -> None:
            return None

        source = KafkaSource(config, runtime, config.group, flush=nothing,
                             feed_bytes=64 * 1024)
        want = sum(manifest["utilities"][u]["valid_readings"] for u in UTILS)

        async def ticker() -> None:   # always ready: it runs whenever the loop turns
            while True:
                turns[0] += 1
                await asyncio.sleep(0)

        async def main() -> None:
            task, other = asyncio.create_task(source.run()), asyncio.create_task(ticker())
            deadline = time.monotonic() + 120
            while sum(c for c, _ in (await asyncio.to_thread(case.state_totals)).values()) \
                    < want:
                assert time.monotonic() < deadline and not task.done(), "no progress"
                await asyncio.sleep(0.2)
            source.stop()
            await task
            other.cancel()

        asyncio.run(main())
        fed_in_a_row = [(a, b) for (ka, a), (kb, b) in zip(calls, calls[1:], strict=False)
                        if ka == kb == "feed"]
        assert len(fed_in_a_row) > 10, "no fetch was cut into parts"
        assert all(b > a for a, b in fed_in_a_row), "the loop did not turn between parts"
        for u, (count, total) in case.state_totals().items():
            truth = manifest["utilities"][u]
            assert count == truth["valid_readings"], u
            assert total == pytest.approx(float(truth["consumption_sum"]), rel=1e-9), u
    finally:
        case.cleanup()
