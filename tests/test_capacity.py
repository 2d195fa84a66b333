"""`auth-kappa plan` and its formulas, against arithmetic done another way (loops over
seconds, meters and nodes), the shipped unit costs, and one-line errors for bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from auth_kappa.capacity import Inputs, parse_bytes, plan
from auth_kappa.capacity_defaults import UNIT_COSTS
from auth_kappa.cli.main import main
from auth_kappa.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
COSTS = {
    "measured": "test", "frame_size": 4, "redis_bytes_per_meter_utility": 1000,
    "single": {"worker_cpu_s_per_million": 200.0, "redis_cpu_s_per_million": 5.0,
               "kafka_bytes_per_reading": 60.0, "kafka_all_bytes_per_reading": 70.0,
               "archive_bytes_per_reading": 12.0},
    "frames": {"worker_cpu_s_per_million": 40.0, "redis_cpu_s_per_million": 1.5,
               "kafka_bytes_per_reading": 90.0, "kafka_all_bytes_per_reading": 100.0,
               "archive_bytes_per_reading": 9.0},
}


def smallest(ok) -> int:
    """The smallest n >= 1 with ok(n): what every ceil() in the plan should find."""
    n = 1
    while not ok(n):
        n += 1
    return n


def brute(meters: int, utilities: int, heartbeat: int, c: dict, *, util: float = 0.5,
          cores_per_worker: float = 1.0, growth: float = 2.0, node: float = 10_000.0,
          fill: float = 0.5, replicas: int = 1, retention_days: int = 2, rf: int = 3,
          broker_write: float = 1000.0, broker_disk: float = 1e12, disk_fill: float = 0.5,
          per_meter: float = 1000.0) -> dict[str, float]:
    """The plan by counting: readings in a simulated minute, CPU-seconds summed per
    reading, and the smallest node counts found by trying one more at a time."""
    minute = sum(1 for _m in range(meters) for _u in range(utilities)
                 for _t in range(0, 60, heartbeat))
    rate = minute / 60
    worker_cpu = sum(c["worker_cpu_s_per_million"] / 1e6 for _ in range(minute)) / 60
    redis_cpu = sum(c["redis_cpu_s_per_million"] / 1e6 for _ in range(minute)) / 60
    workers = smallest(lambda n: n * cores_per_worker * util >= worker_cpu - 1e-12)
    parts = smallest(lambda p: p * utilities >= workers * growth)
    memory = sum(per_meter for _m in range(meters) for _u in range(utilities))
    primaries = smallest(lambda n: n * util >= redis_cpu - 1e-12 and n * node * fill >= memory)
    ingress = minute * c["kafka_all_bytes_per_reading"] / 60
    disk = sum(ingress for _day in range(retention_days) for _s in range(86_400)) * rf
    brokers = smallest(lambda b: b >= rf and b * broker_write >= ingress * rf
                       and b * broker_disk * disk_fill >= disk)
    s3 = sum(minute * c["archive_bytes_per_reading"] for _ in range(24 * 60))
    return {"readings_per_second": rate, "worker_cores": worker_cpu / util,
            "worker_processes": workers, "partitions_per_topic": parts,
            "redis_cores": redis_cpu / util, "redis_memory": memory,
            "redis_primaries": primaries, "redis_nodes": primaries * (1 + replicas),
            "kafka_ingress": ingress, "kafka_disk": disk, "kafka_brokers": brokers,
            "s3_bytes_per_day": s3}


SMALL = Inputs(meters=30_000, utilities=3, heartbeat_s=5, utilisation=0.5, growth=2.0,
               redis_node_memory=10_000.0 * 9000, redis_max_fill=0.5, redis_replicas=1,
               kafka_retention_s=2 * 86_400, replication=3, broker_write=1e6,
               broker_disk=1e12, disk_fill=0.5)


@pytest.mark.parametrize("mode", ["single", "frames"])
def test_plan_matches_counting(mode):
    got = {f.name: f.value for f in plan(SMALL, COSTS, mode).figures}
    want = brute(30_000, 3, 5, COSTS[mode], node=10_000.0 * 9000, broker_write=1e6)
    assert got.keys() == want.keys()
    for name, value in want.items():
        assert got[name] == pytest.approx(value, rel=1e-9), name


def test_each_limit_decides_when_it_is_the_tightest():
    # memory-bound Redis: 2,000 meters x 3 x 1000 B = 6 MB on 1 MB nodes at half fill -> 12
    by_mem = plan(Inputs(meters=2000, redis_node_memory=1e6, redis_max_fill=0.5), COSTS, "single")
    assert by_mem["redis_primaries"].value == 12 and "= 12)" in by_mem["redis_primaries"].formula
    # throughput-bound Kafka: 200,000 readings/s x 100 B x 3 replicas / 10 MB/s -> 6 brokers
    tp = plan(Inputs(meters=1_000_000, utilities=1, heartbeat_s=5, broker_write=1e7,
                     kafka_retention_s=60, broker_disk=1e15), COSTS, "frames")
    assert tp["kafka_brokers"].value == 6
    # tiny fleet: never fewer brokers than replicas, never fewer than one worker
    tiny = plan(Inputs(meters=1, replication=3), COSTS, "frames")
    assert tiny["kafka_brokers"].value == 3 and tiny["worker_processes"].value == 1


def test_parse_bytes_binary_and_decimal():
    assert parse_bytes("64GiB") == 64 * 1024 ** 3
    assert parse_bytes("100MB") == 100 * 1000 ** 2
    assert parse_bytes("4 TiB") == 4 * 1024 ** 4
    assert parse_bytes("512") == 512
    with pytest.raises(UserError, match="--broker-disk"):
        parse_bytes("4 furlongs", name="--broker-disk")


def test_shipped_costs_have_every_field_the_plan_reads():
    measured = json.loads((ROOT / "benchmarks" / "unit_costs.json").read_text())
    assert {k: v for k, v in measured.items() if k != "runs"} == UNIT_COSTS
    for mode in ("single", "frames"):
        figures = plan(Inputs(), UNIT_COSTS, mode).figures     # a missing field: KeyError
        assert all(f.value > 0 and math.isfinite(f.value) for f in figures)
        for name in UNIT_COSTS[mode]:
            if name.endswith(("_per_million", "_per_reading")):
                broken = {**UNIT_COSTS, mode: {k: v for k, v in UNIT_COSTS[mode].items()
                                               if k != name}}
                with pytest.raises(UserError, match=name):
                    plan(Inputs(), broken, mode)


def test_plan_prints_every_figure_with_its_inputs(capsys):
    assert main(["plan", "--meters", "8000000", "--utilities", "3", "--heartbeat", "5s"]) == 0
    out = capsys.readouterr().out
    assert "8,000,000 meters x 3 utilities every 5 s = 4,800,000 readings/s" in out
    for mode in ("single", "frames"):
        c = UNIT_COSTS[mode]
        assert f"4,800,000 readings/s x {c['worker_cpu_s_per_million']:g} CPU s" in out
        assert f"x {c['archive_bytes_per_reading']:g} B per reading x 86,400 s" in out
    for label in ("partitions per topic", "worker cores", "Redis primaries", "Redis memory",
                  "Kafka brokers", "Kafka disk", "S3 per day"):
        assert out.count(label) == 2, label
    assert "not measured yet" in out


def test_plan_json_matches_counting(capsys, tmp_path):
    costs = tmp_path / "costs.json"
    costs.write_text(json.dumps(COSTS))
    assert main(["plan", "--json", "--single", "--costs", str(costs), "--meters", "30000",
                 "--utilisation", "0.5", "--redis-node-memory", "90000000",
                 "--redis-max-fill", "0.5", "--kafka-retention", "2d", "--broker-write", "1MB",
                 "--broker-disk", "1TB", "--disk-fill", "0.5"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert list(got["plans"]) == ["single"]
    want = brute(30_000, 3, 5, COSTS["single"], node=9e7, broker_write=1e6)
    for name, value in want.items():
        assert got["plans"]["single"][name]["value"] == pytest.approx(value, rel=1e-9), name
        assert got["plans"]["single"][name]["formula"]


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["plan", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for default in ("(default: 8000000)", "(default: 5s)", "(default: 64GiB)", "(default: 1d)",
                    "(default: 3)", "(default: 1.0)"):
        assert default in text, default


@pytest.mark.parametrize("argv, word", [
    (["--meters", "0"], "--meters"),
    (["--heartbeat", "soon"], "--heartbeat"),
    (["--redis-node-memory", "lots"], "--redis-node-memory"),
    (["--utilisation", "1.5"], "--utilisation"),
    (["--growth", "0.5"], "--growth"),
    (["--costs", "/nonexistent/costs.json"], "no such file"),
    (["--frames", "--single"], "not allowed with"),
    (["--meters", "many"], "--meters"),
    (["--growth", "nan"], "--growth"),
    (["--broker-disk", "0TiB"], "--broker-disk"),
])
def test_bad_input_is_one_line(capsys, argv, word):
    try:
        code = main(["plan", *argv])
    except SystemExit as exc:       # argparse's own errors exit
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and err[0].startswith("auth-kappa: "), err
    assert word in err[0] and "Traceback" not in err[0], err


@pytest.mark.parametrize("content, word", [
    ("{not json", "not JSON"),
    (json.dumps({**COSTS, "frames": {"worker_cpu_s_per_million": 1}}), "frames."),
    (json.dumps({k: v for k, v in COSTS.items() if k != "redis_bytes_per_meter_utility"}),
     "redis_bytes_per_meter_utility"),
])
def test_bad_costs_file_is_one_line(capsys, tmp_path, content, word):
    path = tmp_path / "costs.json"
    path.write_text(content)
    assert main(["plan", "--costs", str(path)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("auth-kappa: ") and word in err[0], err
