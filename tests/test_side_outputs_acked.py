"""Side outputs are acknowledged before the checkpoint whose offsets produced them, even
when two flushes overlap (the loop's, and a rebalance's checkpoint)."""

from __future__ import annotations

import asyncio
import os

import pytest

from auth_kappa.app import Worker
from auth_kappa.config import Config


@pytest.mark.stack
def test_a_flush_returns_only_once_records_another_flush_took_are_acknowledged(stack, unique):
    """The first flush takes the pending records and is still starting its producer (or
    waiting for acks) when a second one starts with nothing left to send: the second must
    not return before the first's records are acknowledged, or a checkpoint made after it
    could commit offsets whose late readings were never written."""
    env = {**os.environ, "AUTH_TOPIC_PREFIX": f"acks{unique}-", "AUTH_GROUP": f"acks{unique}",
           "AUTH_NAMESPACE": f"acks{unique}", "AUTH_ARCHIVE": "0"}
    worker = Worker(Config.load(env=env))
    worker.create_topics()

    async def overlap() -> tuple[bool, int]:
        worker._pending += [(worker.outputs.late, b"k", b"reading %d" % i, [])
                            for i in range(200)]
        first = asyncio.create_task(worker.send_pending())
        await asyncio.sleep(0)             # the first takes the list and starts sending
        assert not worker._pending
        await worker.send_pending()        # nothing left for this one to send
        done = first.done()
        await first
        await worker.stop()
        return done, len(worker._pending)

    done, left = asyncio.run(overlap())
    assert done, "a flush returned before the records another flush took were acknowledged"
    assert left == 0
