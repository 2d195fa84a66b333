"""Faust workers on the real Kafka and Redis: exact totals, faults, crash, scale-out."""

from __future__ import annotations

import time

import pytest

from tests.support.live import LiveCase, assert_windows_exact, brute_force_meter_windows

pytestmark = [pytest.mark.stack, pytest.mark.slow]
UTILS = ("electricity", "gas", "water")


@pytest.fixture
def case(stack, tmp_path, unique):
    c = LiveCase(f"lw{unique}", tmp_path)
    c.create_topics()
    yield c
    c.cleanup()


def _messages(manifest: dict) -> dict[str, int]:
    return {u: manifest["utilities"][u]["messages"] for u in UTILS}


def test_worker_totals_match_ground_truth_with_faults(case):
    """Late readings go to the late topic, bad ones to quarantine, duplicates count once."""
    m = case.simulate("--meters", "150", "--duration", "10m", "--seed", "11",
                      "--late-fraction", "0.02", "--late-delay", "3m",
                      "--duplicate-fraction", "0.02", "--malformed-fraction", "0.01")
    case.start_worker()
    case.wait_until(_messages(m))
    time.sleep(1.0)  # side outputs are flushed right after the checkpoint
    totals = case.state_totals()
    late = case.read_topic("late")
    quarantine = case.read_topic("quarantine")
    late_by_u = {u: [0, 0.0] for u in UTILS}
    for r in {dict(r.headers)["source"]: r for r in late}.values():   # at least once
        u = dict(r.headers)["source"].decode().split(":")[0]
        late_by_u[u][0] += 1
        late_by_u[u][1] += float(r.value.split(b",")[5])
    for u in UTILS:
        truth = m["utilities"][u]
        count, total = totals[u]
        # every valid reading is in a window or on the late topic, once
        assert count + late_by_u[u][0] == truth["valid_readings"], u
        assert total + late_by_u[u][1] == pytest.approx(float(truth["consumption_sum"]), rel=1e-9), u
    assert len(quarantine) == sum(m["utilities"][u]["malformed"] for u in UTILS)
    assert all(dict(r.headers)["reason"] for r in quarantine)
    # hourly windows hold the same readings as the minute windows
    hourly = case.state_totals(3600)
    for u in UTILS:
        assert hourly[u][0] == totals[u][0] and hourly[u][1] == pytest.approx(totals[u][1])
    assert case.workers[0].poll() is None, "the worker must survive malformed input"


def test_readings_for_final_windows_are_routed_late_not_merged(case):
    """Deterministic lateness: resend old readings once their windows are final."""
    m = case.simulate("--meters", "40", "--duration", "8m", "--seed", "4")
    case.start_worker()
    case.wait_until(_messages(m))
    before = case.state_totals()
    files = case.workdir / "sim-files"
    case.simulate("--meters", "40", "--duration", "8m", "--seed", "4", to="files")
    old = (files / "gas.csv").read_bytes().split(b"\n")[:50]  # first minute: final by now
    from tests.support.kafka import producer as ordered_producer

    producer = ordered_producer(case.config.kafka)
    for line in old:
        producer.produce(f"{case.name}-gas", line, key=line.split(b",")[0])
    producer.flush(30)
    target = _messages(m)
    target["gas"] += len(old)
    case.wait_until(target)
    time.sleep(1.0)
    late = case.read_topic("late")
    assert sorted(r.value for r in late) == sorted(old)
    assert case.state_totals() == before, "late readings must not change final windows"


def test_per_meter_windows_equal_brute_force(case):
    args = ["--meters", "60", "--duration", "6m", "--seed", "5", "--duplicate-fraction", "0.03"]
    m = case.simulate(*args)
    files = case.simulate(*args, to="files")
    assert files["utilities"] == m["utilities"]
    case.start_worker()
    case.wait_until(_messages(m))
    store = case.store()
    for u in UTILS:
        ref = brute_force_meter_windows(case.workdir / "sim-files", u, 60)
        for sid, expected in list(ref.groupby("key"))[:20]:
            got = store.read_windows("meter", u, 60, key=sid)
            assert got["window_start"].tolist() == sorted(expected["window_start"].tolist())
            exp = expected.sort_values("window_start")
            assert got["count"].tolist() == exp["count"].tolist()
            assert got["sum"].to_numpy() == pytest.approx(exp["sum"].to_numpy(), abs=1e-9)


def test_kill_minus_nine_and_restart_counts_exactly_once(case):
    args = ["--meters", "400", "--duration", "20m", "--seed", "21", "--duplicate-fraction",
            "0.01"]
    m = case.simulate(*args)
    case.simulate(*args, to="files")
    target = _messages(m)
    first = case.start_worker()
    deadline = time.monotonic() + 120
    while sum(case.committed().values()) < sum(target.values()) // 4:
        assert time.monotonic() < deadline, case.log_tail()
        time.sleep(0.05)
    case.kill(first)  # SIGKILL: no shutdown hooks, mid-stream
    assert sum(case.committed().values()) < sum(target.values()), "killed too late to matter"
    case.start_worker()
    case.wait_until(target)
    for u, (count, _) in case.state_totals().items():
        assert count == m["utilities"][u]["valid_readings"], u
    assert assert_windows_exact(case.store(), case.workdir / "sim-files", UTILS) > 3 * 300


def test_two_workers_split_partitions_and_stay_exact(case):
    case.start_worker()
    case.start_worker()
    case.wait_for_log("assigned [(", workers=2)  # both hold partitions before data flows
    m = case.simulate("--meters", "400", "--duration", "15m", "--seed", "8",
                      "--duplicate-fraction", "0.01")
    case.wait_until(_messages(m), timeout=240)
    for u, (count, _) in case.state_totals().items():
        assert count == m["utilities"][u]["valid_readings"], u
    last = [log.rsplit("assigned [", 1)[1].split("]")[0] for log in case.logs()]
    assert all(last) and set(last[0].split("), (")).isdisjoint(last[1].split("), ("))
