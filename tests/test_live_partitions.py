"""Real `faust worker` processes on partitions that are empty, or added to a topic while
the stream runs: windows still become final, and no reading is lost or routed late."""

from __future__ import annotations

import time

import pandas as pd
import pytest
from confluent_kafka.admin import AdminClient, NewPartitions

from auth_kappa import Engine
from tests.support.epoch import seconds
from tests.support.kafka import producer
from tests.support.live import LiveCase

pytestmark = [pytest.mark.stack, pytest.mark.slow]
T0 = (int(time.time()) - 3 * 3600) // 60 * 60


@pytest.fixture
def case(stack, tmp_path, unique):
    c = LiveCase(f"lp{unique}", tmp_path, extra_env={"AUTH_IDLE_TIMEOUT": "3s"})
    c.create_topics(partitions=4)
    yield c
    c.cleanup()


def _send(case: LiveCase, partition: int, sids: list[str], minutes: range) -> int:
    p = producer(case.config.kafka, **{"linger.ms": 5})
    n = 0
    for k in range(minutes.start * 12, minutes.stop * 12):
        end = T0 + 5 * k + 5
        for sid in sids:
            p.produce(f"{case.name}-electricity", f"{sid},A,household,{end - 5},WA,0.25,{end}"
                      .encode(), key=sid.encode(), partition=partition)
            n += 1
    p.flush(30)
    return n


def _sids(n: int, base: int) -> list[str]:
    return [f"00000000-0000-4000-8000-{base + i:012d}" for i in range(n)]


def test_empty_partitions_do_not_hold_the_watermark(case):
    """Defect 1: readings on partition 0 of 4, nothing on the others."""
    sent = _send(case, 0, _sids(5, 1), range(0, 10))
    case.start_worker()
    case.wait_until({"electricity": sent, "gas": 0, "water": 0})
    live = Engine.connect(case.config)
    deadline = time.monotonic() + 60
    while seconds(live.watermark("electricity")) < T0 + 600 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert live.watermark("electricity") == pd.Timestamp(T0 + 600, unit="s", tz="UTC"), \
        case.log_tail()
    # every minute but the last is final by now, and published with its exact count
    deadline = time.monotonic() + 30
    while len(case.read_topic("windows")) == 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    frames = _final_windows(case)
    minute = frames[frames["window_end"] - frames["window_start"] == 60]
    counts = minute.groupby("window_start")["count"].sum()   # 5 meters; end_ts T0+5 ...
    assert counts.tolist() == [5 * 11] + [5 * 12] * 8          # ... so minute 0 holds 11
    assert case.state_totals()["electricity"][0] == sent


def test_partitions_added_mid_stream_are_consumed_exactly(case):
    """Two more partitions appear while the stream runs; their meters' readings arrive
    after the others' and must count, not turn late."""
    first = _send(case, 0, _sids(4, 100), range(0, 6))
    case.start_worker()
    case.wait_until({"electricity": first, "gas": 0, "water": 0})
    admin = AdminClient({"bootstrap.servers": case.config.kafka})
    fut = admin.create_partitions([NewPartitions(f"{case.name}-electricity", 6)])
    for f in fut.values():
        f.result(30)
    later = _send(case, 5, _sids(3, 200), range(0, 6))     # older event time, new partition
    more = _send(case, 0, _sids(4, 100), range(6, 8))
    case.wait_until({"electricity": first + later + more, "gas": 0, "water": 0},
                    timeout=240)
    assert case.state_totals()["electricity"][0] == first + later + more, case.log_tail()
    assert case.read_topic("late") == []


def _final_windows(case: LiveCase):
    import pandas as pd

    from auth_kappa.topology.frames import read_ipc

    return pd.concat([read_ipc(r.value).to_pandas() for r in case.read_topic("windows")])
