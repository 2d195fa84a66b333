"""The meter-fleet simulator: determinism, registry facts, seed format, profiles, faults, CLI.

File sinks only; no services needed. The Kafka round trip is in test_simulator_kafka.py.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from auth_kappa.cli.main import main
from auth_kappa.config import UTILITIES
from simulators import (
    DECIMALS,
    SEED_MAX,
    STATES,
    FaultSpec,
    Pacer,
    SimSpec,
    iter_reading_batches,
    make_registry,
    parse_pace,
    parse_start,
)
from simulators.registry import uuid4_strings
from simulators.runner import simulate
from simulators.sinks.files import FileSink
from simulators.states import UTC_OFFSET_HOURS

START = 1772409600  # 2026-03-02T00:00:00Z, the default
FAULTS = ["--late-fraction", "0.03", "--duplicate-fraction", "0.02",
          "--malformed-fraction", "0.02", "--late-delay", "40s", "--duplicate-delay", "15s"]


def run_cli(out: Path, *args: str) -> dict:
    """`auth-kappa simulate ... --out out` in-process; the manifest it wrote."""
    assert main(["simulate", "--quiet", "--out", str(out), *args]) == 0
    return json.loads((out / "manifest.json").read_text())


def dir_bytes(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def csv_rows(path: Path) -> list[list[str]]:
    return [line.split(",") for line in path.read_text().splitlines()]


# --- determinism -------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_same_arguments_give_byte_identical_files(tmp_path: Path, fmt: str) -> None:
    args = ["--meters", "300", "--duration", "3m", "--seed", "11", "--format", fmt, *FAULTS]
    run_cli(tmp_path / "a", *args)
    run_cli(tmp_path / "b", *args)
    a, b = dir_bytes(tmp_path / "a"), dir_bytes(tmp_path / "b")
    ext = {"csv": "csv", "json": "jsonl", "parquet": "parquet"}[fmt]
    assert set(a) == {f"{u}.{ext}" for u in UTILITIES} | {
        "registry.parquet", "ground_truth.parquet", "manifest.json"}
    assert a == b


def test_different_seed_gives_different_data(tmp_path: Path) -> None:
    run_cli(tmp_path / "a", "--meters", "100", "--duration", "1m", "--seed", "1")
    run_cli(tmp_path / "b", "--meters", "100", "--duration", "1m", "--seed", "2")
    for name in ("electricity.csv", "registry.parquet"):
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "b" / name).read_bytes()


def test_values_do_not_depend_on_chunking_or_pace(tmp_path: Path) -> None:
    """Kafka and files get the same stream because no sink or chunk size changes it."""
    spec = SimSpec(meters=97, seed=5, duration=120, faults=FaultSpec(0.05, 20, 0.05, 10, 0.05))
    outputs = []
    for chunk in (7, 250, 97, 1 << 16):
        out = tmp_path / f"c{chunk}"
        simulate(spec, FileSink(out), out, chunk=chunk)
        outputs.append(dir_bytes(out))
    assert all(o == outputs[0] for o in outputs[1:])


def test_start_accepts_iso_and_epoch_and_reads_naive_as_utc() -> None:
    assert parse_start("2026-03-02T00:00:00Z") == START
    assert parse_start("2026-03-02T00:00:00") == START
    assert parse_start("2026-03-02T01:00:00+01:00") == START
    assert parse_start(str(START)) == START


# --- registry --------------------------------------------------------------------------

@pytest.mark.parametrize("meters,business", [(1000, 60), (50, 3), (1, 0), (17, 1)])
def test_business_share_is_exactly_six_percent(tmp_path: Path, meters: int, business: int) -> None:
    manifest = run_cli(tmp_path, "--meters", str(meters), "--duration", "5s")
    reg = pq.read_table(tmp_path / "registry.parquet").to_pylist()
    assert len(reg) == meters
    types = [r["type"] for r in reg]
    assert (types.count("business"), types.count("household")) == (business, meters - business)
    assert manifest["registry"]["business"] == business


def test_registry_columns() -> None:
    reg = make_registry(SimSpec(meters=2000, seed=3)).to_table().to_pylist()
    assert len({r["service_id"] for r in reg}) == 2000
    for r in reg:
        assert uuid.UUID(r["service_id"]).version == 4
        assert r["state"] in STATES
        assert START - 5 * 365 * 86400 <= r["registered_ts"] < START
        assert 0 <= r["offset_s"] < 5
        assert r["user_name"] and "," not in r["user_name"]
    assert len(STATES) == 51 and len(set(STATES)) == 51


def test_uuid_text_matches_the_uuid_module() -> None:
    raw = np.random.default_rng(0).integers(0, 256, size=(500, 16), dtype=np.uint8)
    expected = [str(uuid.UUID(bytes=bytes(row), version=4)) for row in raw]
    assert uuid4_strings(raw).to_pylist() == expected


# --- seed format, timing -----------------------------------------------------------------

def test_csv_fields_types_and_order(tmp_path: Path) -> None:
    run_cli(tmp_path, "--meters", "200", "--duration", "2m", "--seed", "4")
    registry = {r["service_id"]: r for r in pq.read_table(tmp_path / "registry.parquet").to_pylist()}
    for u in UTILITIES:
        text = (tmp_path / f"{u}.csv").read_text()
        assert not text.startswith("service_id")  # no header, like the original
        for f in csv_rows(tmp_path / f"{u}.csv"):
            assert len(f) == 7
            sid, name, kind, start_ts, state, consumption, end_ts = f
            assert str(uuid.UUID(sid)) == sid and uuid.UUID(sid).version == 4
            assert (name, kind, state) == (registry[sid]["user_name"], registry[sid]["type"],
                                           registry[sid]["state"])
            assert kind in ("household", "business") and state in STATES
            assert start_ts.isdigit() and end_ts.isdigit()
            assert int(end_ts) - int(start_ts) == 5
            value = float(consumption)
            assert 0 <= value <= SEED_MAX[u] and math.isfinite(value)
            assert len(consumption.split(".")[1]) == DECIMALS[u]  # fixed decimals


def test_json_lines_carry_the_same_fields_and_values(tmp_path: Path) -> None:
    args = ["--meters", "50", "--duration", "1m", "--seed", "9"]
    run_cli(tmp_path / "c", *args)
    run_cli(tmp_path / "j", *args, "--format", "json")
    run_cli(tmp_path / "p", *args, "--format", "parquet")
    fields = ["service_id", "user_name", "type", "start_ts", "state", "consumption", "end_ts"]
    rows = [dict(zip(fields, r, strict=True)) for r in csv_rows(tmp_path / "c" / "gas.csv")]
    objs = [json.loads(line) for line in (tmp_path / "j" / "gas.jsonl").read_text().splitlines()]
    table = pq.read_table(tmp_path / "p" / "gas.parquet").to_pylist()
    assert [list(o) for o in objs[:1]] == [fields]
    assert [list(t) for t in table[:1]] == [fields]
    for r, o, t in zip(rows, objs, table, strict=True):
        for f in fields:
            expected = float(r[f]) if f == "consumption" else (
                int(r[f]) if f.endswith("_ts") else r[f])
            assert o[f] == expected == t[f]


def test_heartbeat_spacing_and_nothing_dropped_at_the_end(tmp_path: Path) -> None:
    duration = 62  # not a multiple of the heartbeat: the last tick is partial
    run_cli(tmp_path, "--meters", "120", "--duration", f"{duration}s", "--seed", "2")
    offsets = {r["service_id"]: r["offset_s"]
               for r in pq.read_table(tmp_path / "registry.parquet").to_pylist()}
    ends: dict[str, list[int]] = defaultdict(list)
    previous = 0
    for f in csv_rows(tmp_path / "water.csv"):
        end = int(f[6])
        assert end >= previous  # the clean stream is in event-time order
        previous = end
        ends[f[0]].append(end)
    assert set(ends) == set(offsets)
    for sid, series in ends.items():
        assert series[0] == START + offsets[sid] + 5  # own offset inside the first heartbeat
        assert np.all(np.diff(series) == 5)
        assert series[-1] <= START + duration < series[-1] + 5  # last one that fits is there
        assert len(series) == (duration - offsets[sid]) // 5


def test_non_default_heartbeat(tmp_path: Path) -> None:
    run_cli(tmp_path, "--meters", "10", "--duration", "1h", "--heartbeat", "15m")
    rows = csv_rows(tmp_path / "gas.csv")
    offsets = pq.read_table(tmp_path / "registry.parquet").column("offset_s").to_pylist()
    assert len(rows) == sum((3600 - o) // 900 for o in offsets)
    assert {int(r[6]) - int(r[3]) for r in rows} == {900}
    # maxima are per 5 s heartbeat: a 15 min reading is 180 heartbeats' worth
    assert max(float(r[5]) for r in rows) <= SEED_MAX["gas"] * 180


# --- profiles ----------------------------------------------------------------------------

def _readings(spec: SimSpec) -> dict[str, dict[str, np.ndarray]]:
    cols: dict[str, dict[str, list]] = {u: defaultdict(list) for u in UTILITIES}
    for u, batch in iter_reading_batches(spec):
        for name in ("service_id", "type", "state", "consumption", "end_ts"):
            cols[u][name].append(batch.column(name).to_numpy(zero_copy_only=False))
    return {u: {k: np.concatenate(v) for k, v in c.items()} for u, c in cols.items()}


def test_seed_profile_is_triangular_with_mean_half_the_maximum() -> None:
    data = _readings(SimSpec(meters=1000, duration=600, seed=1))
    for u in UTILITIES:
        values = data[u]["consumption"]
        assert len(values) > 100_000
        top = SEED_MAX[u]
        assert values.min() >= 0 and values.max() <= top
        assert values.mean() == pytest.approx(top / 2, rel=0.02)
        # triangular(0, max) with mode max/2: variance = max^2/24
        assert values.var() == pytest.approx(top ** 2 / 24, rel=0.05)


def test_realistic_profile_has_daily_weekly_and_seasonal_shape() -> None:
    week = SimSpec(meters=300, duration=7 * 86400, heartbeat=300, seed=8, profile="realistic",
                   start=parse_start("2026-01-05T00:00:00Z"))  # Monday
    data = _readings(week)
    registry = make_registry(week).to_table().to_pylist()
    offset = {r["service_id"]: UTC_OFFSET_HOURS[STATES.index(r["state"])] * 3600 for r in registry}
    for u in UTILITIES:
        d = data[u]
        mean = d["consumption"].mean()
        seed_mean = SEED_MAX[u] / 2 * 300 / 5  # per 300 s heartbeat
        assert seed_mean / 3 < mean < seed_mean * 3  # same order of magnitude as seed
        local = d["end_ts"] - 150 + np.array([offset[s] for s in d["service_id"]])
        hour = (local % 86400) // 3600
        weekend = ((local // 86400) + 3) % 7 >= 5
        home = d["type"] == "household"
        evening = d["consumption"][home & (hour >= 18) & (hour < 21)].mean()
        night = d["consumption"][home & (hour >= 1) & (hour < 4)].mean()
        assert evening > 1.5 * night
        office = ~home & ~weekend & (hour >= 9) & (hour < 17)
        assert d["consumption"][office].mean() > 2 * d["consumption"][~home & weekend].mean()
    july = SimSpec(meters=300, duration=86400, heartbeat=600, seed=8, profile="realistic",
                   start=parse_start("2026-07-06T00:00:00Z"))
    jan = SimSpec(meters=300, duration=86400, heartbeat=600, seed=8, profile="realistic",
                  start=parse_start("2026-01-05T00:00:00Z"))
    summer, winter = _readings(july), _readings(jan)
    assert winter["gas"]["consumption"].mean() > 1.5 * summer["gas"]["consumption"].mean()
    assert summer["water"]["consumption"].mean() > winter["water"]["consumption"].mean()


# --- faults and ground truth -----------------------------------------------------------

def test_fault_knobs_match_ground_truth_and_manifest(tmp_path: Path) -> None:
    manifest = run_cli(tmp_path, "--meters", "400", "--duration", "5m", "--seed", "3", *FAULTS)
    truth = pq.read_table(tmp_path / "ground_truth.parquet").to_pylist()
    offsets = pq.read_table(tmp_path / "registry.parquet").column("offset_s").to_pylist()
    for u in UTILITIES:
        m = manifest["utilities"][u]
        lines = (tmp_path / f"{u}.csv").read_bytes().split(b"\n")[:-1]
        rows = [t for t in truth if t["utility"] == u]
        kinds = Counter(t["kind"] for t in rows)
        assert (kinds["late"], kinds["duplicate"], kinds["malformed"]) == (
            m["late"], m["duplicates"], m["malformed"])
        assert len(lines) == m["messages"] == m["readings"] + m["duplicates"]
        assert m["readings"] == sum((300 - o) // 5 for o in offsets)
        for kind, fraction in (("late", 0.03), ("duplicate", 0.02), ("malformed", 0.02)):
            assert kinds[kind] == pytest.approx(fraction * m["readings"], rel=0.2)
        bad_positions = {t["position"] for t in rows if t["kind"] == "malformed"}
        delayed = {t["position"]: t for t in rows if t["kind"] != "malformed"}
        on_time = [(i, int(line.split(b",")[6])) for i, line in enumerate(lines)
                   if i not in bad_positions and i not in delayed]
        on_time_pos = [i for i, _ in on_time]
        for t in rows:
            line = lines[t["position"]]
            if t["kind"] == "malformed":
                assert line == t["raw"] and t["reason"]
                continue
            f = line.decode().split(",")
            assert (f[0], int(f[3]), int(f[6])) == (t["service_id"], t["start_ts"], t["end_ts"])
            assert float(f[5]) == t["consumption"]
            if t["kind"] == "duplicate":
                assert lines[t["original_position"]] == line
                assert t["original_position"] < t["position"]
            # A delayed message sits between the on-time messages ending <= and > its release.
            release = t["end_ts"] + t["delay_s"]
            k = int(np.searchsorted(on_time_pos, t["position"]))
            assert k == 0 or on_time[k - 1][1] <= release
            assert k == len(on_time) or on_time[k][1] > release
        # Exact sum of valid consumption: each (service_id, end_ts) once, malformed excluded.
        seen, units = set(), 0
        for i, line in enumerate(lines):
            if i in bad_positions:
                continue
            f = line.decode().split(",")
            if (f[0], f[6]) not in seen:
                seen.add((f[0], f[6]))
                units += int(f[5].replace(".", ""))
        assert len(seen) == m["valid_readings"]
        assert units == m["consumption_sum_units"]
        assert m["consumption_sum"] == f"{units // 10 ** m['decimals']}.{units % 10 ** m['decimals']:0{m['decimals']}d}"


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_engine_rejects_exactly_the_malformed_messages(tmp_path: Path, fmt: str) -> None:
    """Contract with the embedded engine: each malformed message is quarantined, nothing
    else is; duplicates count once; window sums equal the manifest's exact sums."""
    from auth_kappa import Engine

    manifest = run_cli(tmp_path, "--meters", "100", "--duration", "10m", "--seed", "6",
                       "--format", fmt, *FAULTS)
    engine = Engine.embedded("1m", grace="10m")  # grace > delays: late readings still count
    engine.ingest(tmp_path)
    engine.flush()
    counts = manifest["utilities"]
    assert engine.stats.quarantined == sum(c["malformed"] for c in counts.values())
    assert engine.stats.duplicates == sum(c["duplicates"] for c in counts.values())
    assert engine.stats.accepted == sum(c["valid_readings"] for c in counts.values())
    assert engine.stats.late == 0
    for u in UTILITIES:
        total = engine.windows("meter", u)["sum"].sum()
        assert total == pytest.approx(float(counts[u]["consumption_sum"]), rel=1e-9)


def test_every_malformed_kind_appears(tmp_path: Path) -> None:
    run_cli(tmp_path, "--meters", "200", "--duration", "5m", "--malformed-fraction", "0.2")
    truth = pq.read_table(tmp_path / "ground_truth.parquet").to_pylist()
    from simulators.encoding import CsvFormat

    assert {t["reason"].split(":")[0] for t in truth} == set(CsvFormat.kinds)


# --- pacing ----------------------------------------------------------------------------------

def test_parse_pace() -> None:
    assert parse_pace("max") is None
    assert parse_pace("realtime") == 1.0
    assert parse_pace("10x") == 10.0


def test_pacer_waits_for_simulated_time_scaled() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    pacer = Pacer(10.0, sim_start=START, clock=lambda: now[0], sleep=sleep)
    pacer.wait(START + 50)  # 50 simulated seconds at 10x: 5 wall seconds
    assert now[0] == pytest.approx(105.0)
    pacer.wait(START + 20)  # already past: no sleep
    assert len(slept) == 1


def test_paced_run_takes_its_time_and_writes_the_same_bytes(tmp_path: Path) -> None:
    import time

    args = ["--meters", "20", "--duration", "20s", "--seed", "1", *FAULTS]
    t0 = time.monotonic()
    run_cli(tmp_path / "paced", *args, "--pace", "40x")
    assert time.monotonic() - t0 >= 0.45  # 20 simulated seconds at 40x = 0.5 s
    run_cli(tmp_path / "max", *args)
    a, b = dir_bytes(tmp_path / "paced"), dir_bytes(tmp_path / "max")
    a.pop("manifest.json"), b.pop("manifest.json")  # records the pace
    assert a == b


# --- CLI errors ----------------------------------------------------------------------------

@pytest.mark.parametrize("args,fragment", [
    (["--meters", "-5"], "--meters"),
    (["--meters", "0"], "--meters"),
    (["--meters", "many"], "--meters"),
    (["--duration", "10q"], "--duration"),
    (["--duration", "2s"], "heartbeat"),
    (["--profile", "weird"], "profile"),
    (["--format", "xml"], "format"),
    (["--late-fraction", "1.5"], "--late-fraction"),
    (["--malformed-fraction", "-0.1"], "--malformed-fraction"),
    (["--late-fraction", "0.6", "--duplicate-fraction", "0.6"], "add up"),
    (["--pace", "fast"], "--pace"),
    (["--start", "yesterday"], "--start"),
    (["--heartbeat", "2.5s"], "--heartbeat"),
    (["--seed", "-1"], "--seed"),
    (["--to", "kafka", "--format", "parquet"], "csv or json"),
    (["--to", "ftp"], "--to"),
])
def test_bad_arguments_give_one_line_and_nonzero_exit(tmp_path: Path, capsys, args, fragment) -> None:
    try:
        code = main(["simulate", "--out", str(tmp_path), *args])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code != 0
    assert err.count("\n") == 1 and "Traceback" not in err
    assert fragment in err
    assert not (tmp_path / "electricity.csv").exists()


def test_cli_subprocess_bad_input_and_unreachable_kafka(tmp_path: Path) -> None:
    bad = subprocess.run([sys.executable, "-m", "auth_kappa.cli.main", "simulate",
                          "--meters", "-3", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and bad.stderr.count("\n") == 1
    assert "Traceback" not in bad.stderr and "--meters" in bad.stderr
    down = subprocess.run([sys.executable, "-m", "auth_kappa.cli.main", "simulate", "--to", "kafka",
                           "--kafka", "127.0.0.1:1", "--out", str(tmp_path), "--meters", "5"],
                          capture_output=True, text=True, timeout=60)
    assert down.returncode == 3
    assert down.stderr.count("\n") == 1 and "cannot reach Kafka at 127.0.0.1:1" in down.stderr
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_uuid_keys_are_the_uuid_bytes_and_refuse_every_other_byte() -> None:
    """Against the uuid module and a regex: one valid uuid with every byte value at every
    position (the keys are the 16 bytes as two little-endian uint64)."""
    import re

    from auth_kappa.topology.keys import uuid_keys

    canonical = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    good = [str(uuid.UUID(int=i * 0x9E3779B97F4A7C15 + 7, version=4)).encode() for i in range(50)]
    texts = list(good)
    for pos in range(36):
        for b in range(256):
            t = bytearray(good[pos % len(good)])
            t[pos] = b
            texts.append(bytes(t))
    keys, valid = uuid_keys(np.array(texts, "S36"))
    for text, key, ok in zip(texts, keys, valid, strict=True):
        assert bool(ok) == (canonical.fullmatch(text) is not None), text
        if ok:
            raw = uuid.UUID(text.decode()).bytes
            assert (int(key[0]), int(key[1])) == (int.from_bytes(raw[:8], "little"),
                                                  int.from_bytes(raw[8:], "little"))
