"""`auth-kappa simulate --inject`: leaks, gaps and spikes, checked from the CSV output.

Files sink only (no services). Every check recomputes from the written readings with
pandas: the anomaly meter's readings against the same run without --inject, hourly
totals, and the manifest's counts and exact sums.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from auth_kappa.cli.main import main
from auth_kappa.config import UTILITIES
from simulators import SimSpec, parse_start
from simulators.runner import simulate
from simulators.sinks.files import FileSink
from simulators.spec import InjectSpec

COLUMNS = ["service_id", "user_name", "type", "start_ts", "state", "consumption", "end_ts"]
FLEET = ["--meters", "12", "--duration", "5h", "--seed", "4", "--profile", "realistic"]
INJECT = "leak=2,gap=3,spike=3"
DECIMALS = {"electricity": 6, "gas": 9, "water": 7}


def run(out: Path, *args: str) -> dict:
    assert main(["simulate", "--quiet", "--out", str(out), *args]) == 0
    return json.loads((out / "manifest.json").read_text())


def readings(out: Path, utility: str) -> pd.DataFrame:
    """The CSV with exact integer units (the text's digits) and the UTC hour of end_ts."""
    df = pd.read_csv(out / f"{utility}.csv", header=None, names=COLUMNS,
                     dtype={"consumption": str})
    df["units"] = df.consumption.str.replace(".", "", regex=False).astype("int64")
    df["hour"] = df.end_ts // 3600 * 3600
    return df


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict]]:
    root = tmp_path_factory.mktemp("inject")
    return {name: (root / name, run(root / name, *FLEET, *extra)) for name, extra in {
        "plain": [], "inject": ["--inject", INJECT], "again": ["--inject", INJECT],
        "zero": ["--inject", "leak=0,gap=0,spike=0"]}.items()}


def anomalies(runs: dict, kind: str) -> list[dict]:
    found = [a for a in runs["inject"][1]["anomalies"] if a["kind"] == kind]
    assert len(found) == {"leak": 2, "gap": 3, "spike": 3}[kind]
    return found


def meter(out: Path, a: dict) -> pd.DataFrame:
    df = readings(out, a["utility"])
    return df[df.service_id == a["service_id"]].set_index("end_ts")


def test_manifest_lists_distinct_meters_inside_the_run(runs: dict) -> None:
    manifest = runs["inject"][1]
    start, end = manifest["arguments"]["start_ts"], manifest["arguments"]["end_ts"]
    listed = manifest["anomalies"]
    assert manifest["arguments"]["inject"] == {"leak": 2, "gap": 3, "spike": 3}
    assert len({a["service_id"] for a in listed}) == len(listed) == 8
    for a in listed:
        assert start <= a["start"] < a["end"] <= end
        assert a["utility"] in {"leak": ["water"], "gap": UTILITIES,
                                "spike": ["electricity", "gas"]}[a["kind"]]
    assert runs["again"][1]["anomalies"] == listed  # same seed, same anomalies


def test_gap_meter_sends_nothing_inside_the_gap(runs: dict) -> None:
    for a in anomalies(runs, "gap"):
        assert 600 <= a["end"] - a["start"] <= 7200
        got, plain = meter(runs["inject"][0], a), meter(runs["plain"][0], a)
        inside = (got.index >= a["start"]) & (got.index < a["end"])
        assert not inside.any()
        assert (got.index < a["start"]).any() and (got.index >= a["end"]).any()
        missing = plain[(plain.index >= a["start"]) & (plain.index < a["end"])]
        assert len(missing) == a["missing_readings"] > 0
        # Everything else of that meter is sent unchanged.
        assert plain.drop(missing.index).units.equals(got.units)


def test_leak_adds_a_continuous_flow(runs: dict) -> None:
    end = runs["inject"][1]["arguments"]["end_ts"]
    for a in anomalies(runs, "leak"):
        got, plain = meter(runs["inject"][0], a), meter(runs["plain"][0], a)
        assert got.index.equals(plain.index)
        extra = got.units - plain.units
        stop = a["end"] + (1 if a["end"] == end else 0)  # to the end: the last reading too
        during = (extra.index >= a["start"]) & (extra.index < stop)
        assert during.any() and (extra[during] > 0).all() and (extra[~during] == 0).all()
        flow = round(a["rate_per_hour"] * 10 ** DECIMALS["water"])
        hourly = got.groupby("hour").units.sum()
        added = extra.groupby(got.hour).sum()
        whole = [h for h in hourly.index if h >= a["start"] and h + 3600 <= a["end"]]
        assert whole
        assert (hourly[whole] >= flow).all()
        assert (added[whole] >= flow).all() and (added[whole] < flow * 1.01).all()


def test_spike_hour_is_far_above_the_meters_other_hours(runs: dict) -> None:
    for a in anomalies(runs, "spike"):
        assert a["end"] - a["start"] == 3600 and a["start"] % 3600 == 0
        got, plain = meter(runs["inject"][0], a), meter(runs["plain"][0], a)
        assert got.index.equals(plain.index)
        changed = got.units != plain.units
        assert ((got.index[changed] >= a["start"]) & (got.index[changed] < a["end"])).all()
        hourly = got.groupby("hour").units.sum()
        counts = got.groupby("hour").size()
        others = hourly[(hourly.index != a["start"]) & (counts == counts.max())]
        assert len(others) >= 2
        assert hourly[a["start"]] >= 4 * others.median()


def test_manifest_counts_and_sums_equal_the_csv(runs: dict) -> None:
    for name in ("inject", "plain"):
        out, manifest = runs[name]
        for u in UTILITIES:
            df, c = readings(out, u), manifest["utilities"][u]
            assert c["readings"] == c["messages"] == c["valid_readings"] == len(df)
            assert c["consumption_sum_units"] == int(df.units.sum())
    inj, plain = runs["inject"][1]["utilities"], runs["plain"][1]["utilities"]
    for u in UTILITIES:
        gone = sum(a["missing_readings"] for a in runs["inject"][1]["anomalies"]
                   if a["kind"] == "gap" and a["utility"] == u)
        assert inj[u]["readings"] == plain[u]["readings"] - gone


def test_same_arguments_same_bytes_and_zero_counts_change_nothing(runs: dict) -> None:
    def files(name: str) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(runs[name][0].iterdir())
                if p.name != "manifest.json"}

    assert files("again") == files("inject")
    assert (runs["again"][0] / "manifest.json").read_bytes() == \
        (runs["inject"][0] / "manifest.json").read_bytes()
    assert files("zero") == files("plain") != files("inject")
    zero, plain = runs["zero"][1], runs["plain"][1]
    assert zero.pop("anomalies") == [] and "anomalies" not in plain
    assert zero["arguments"].pop("inject") == {"leak": 0, "gap": 0, "spike": 0}
    assert zero == plain


def test_faults_and_chunking_keep_the_anomalies(tmp_path: Path, runs: dict) -> None:
    """Late and duplicate readings with injection; chunks of 997 give the same bytes."""
    faults = ["--late-fraction", "0.03", "--duplicate-fraction", "0.02"]
    manifest = run(tmp_path / "f", *FLEET, "--inject", INJECT, *faults)
    assert manifest["anomalies"] == runs["inject"][1]["anomalies"]
    for u in UTILITIES:
        df, c = readings(tmp_path / "f", u), manifest["utilities"][u]
        assert len(df) == c["messages"]
        unique = df.drop_duplicates(["service_id", "end_ts"])
        assert len(unique) == c["readings"] == c["messages"] - c["duplicates"]
        assert int(unique.units.sum()) == c["consumption_sum_units"]
        for a in manifest["anomalies"]:
            if a["kind"] == "gap" and a["utility"] == u:
                mine = df[df.service_id == a["service_id"]]
                assert not ((mine.end_ts >= a["start"]) & (mine.end_ts < a["end"])).any()
    spec = SimSpec(meters=12, duration=5 * 3600, seed=4, profile="realistic",
                   start=parse_start("2026-03-02T00:00:00Z"), inject=InjectSpec(2, 3, 3))
    simulate(spec, FileSink(tmp_path / "c"), tmp_path / "c", chunk=997)
    for u in UTILITIES:
        assert (tmp_path / "c" / f"{u}.csv").read_bytes() == \
            (runs["inject"][0] / f"{u}.csv").read_bytes()


@pytest.mark.parametrize("value", ["leak=x", "gap=-1", "flood=2", "leak=1,leak=2", "",
                                   "spike=13"])
def test_bad_inject_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture,
                                value: str) -> None:
    assert main(["simulate", "--quiet", *FLEET, "--inject", value,
                 "--out", str(tmp_path)]) != 0
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--inject" in err, err
    assert not (tmp_path / "manifest.json").exists()


def test_bad_inject_from_the_shell(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "auth_kappa.cli.main", "simulate", "--quiet",
                           *FLEET, "--inject", "leak=2,gap=two", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "gap='two'" in proc.stderr


def test_leak_in_a_long_run_lasts_a_seeded_30_hours_or_more(tmp_path: Path) -> None:
    fleet = ["--meters", "3", "--duration", "40h", "--seed", "9"]
    plain = run(tmp_path / "plain", *fleet)
    manifest = run(tmp_path / "leak", *fleet, "--inject", "leak=2")
    assert plain["utilities"]["water"]["readings"] == manifest["utilities"]["water"]["readings"]
    for a in manifest["anomalies"]:
        assert a["start"] % 3600 == 0 and 30 * 3600 <= a["end"] - a["start"] <= 40 * 3600
        assert a["end"] <= plain["arguments"]["end_ts"]
        got, before = meter(tmp_path / "leak", a), meter(tmp_path / "plain", a)
        extra = got.units - before.units
        during = (extra.index >= a["start"]) & (extra.index < a["end"])
        assert (extra[during] > 0).all() and (extra[~during] == 0).all()
        assert during.sum() == (a["end"] - a["start"]) // 5
        hourly = extra.groupby(got.hour).sum()
        flow = round(a["rate_per_hour"] * 10 ** DECIMALS["water"])
        assert (hourly[(hourly.index >= a["start"]) & (hourly.index < a["end"])] >= flow).all()
