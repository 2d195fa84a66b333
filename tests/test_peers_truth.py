"""The check bench_worker applies to its peers (benchmarks/peers/truth.py): its brute force
against a plain loop over the simulator's readings, and that it catches wrong windows."""

from __future__ import annotations

import pandas as pd

from benchmarks.peers import truth
from simulators import SimSpec, iter_reading_batches


def loop_windows(meters: int, duration: float) -> dict[str, dict[tuple[str, int], list]]:
    spec = SimSpec(meters=meters, duration=duration, seed=0)
    out: dict[str, dict[tuple[str, int], list]] = {u: {} for u in truth.UTILITIES}
    for utility, batch in iter_reading_batches(spec):
        for row in batch.to_pylist():
            acc = out[utility].setdefault((row["service_id"], row["end_ts"] // 60 * 60), [0, 0.0])
            acc[0] += 1
            acc[1] += row["consumption"]
    return out


def test_expected_windows_match_a_plain_loop() -> None:
    got = truth.expected_windows(7, 185.0)
    want = loop_windows(7, 185.0)
    for u in truth.UTILITIES:
        rows = {(r.service_id, int(r.start)): (int(r.count), r.sum)
                for r in got[u].itertuples()}
        assert rows.keys() == want[u].keys()
        for key, (count, total) in want[u].items():
            assert rows[key][0] == count
            assert abs(rows[key][1] - total) <= 1e-9 * max(1.0, abs(total))


def test_compare_accepts_exact_windows_and_catches_each_kind_of_error() -> None:
    want = truth.expected_windows(5, 185.0)
    assert truth.compare({u: df.copy() for u, df in want.items()}, want) == \
        ("ok", sum(int(df["count"].sum()) for df in want.values()))

    def changed(edit) -> dict[str, pd.DataFrame]:
        got = {u: df.copy() for u, df in want.items()}
        got["gas"] = edit(got["gas"])
        return got

    wrong_count = changed(lambda df: df.assign(count=df["count"] + (df.index == 0)))
    wrong_sum = changed(lambda df: df.assign(sum=df["sum"] + 1e-6 * (df.index == 3)))
    missing = changed(lambda df: df.iloc[1:])
    twice = changed(lambda df: pd.concat([df, df.iloc[:1]]))
    for got in (wrong_count, wrong_sum, missing, twice):
        check, _ = truth.compare(got, want)
        assert check.startswith("WRONG: gas:"), check


def test_frontier_allows_only_the_newest_windows_to_be_open() -> None:
    want = truth.expected_windows(5, 185.0)
    newest = {u: df["start"].max() for u, df in want.items()}
    closed = {u: df[df["start"] < newest[u]].copy() for u, df in want.items()}
    assert truth.compare(closed, want, frontier="utility")[0] == "ok"
    assert truth.compare(closed, want)[0].startswith("WRONG")
    # a hole below the newest emitted window is an error even with a frontier
    holed = {u: df.copy() for u, df in closed.items()}
    holed["water"] = holed["water"][holed["water"]["start"] != holed["water"]["start"].min()]
    assert truth.compare(holed, want, frontier="utility")[0].startswith("WRONG: water:")


def test_meter_frontier_allows_each_meters_newest_windows_to_be_open() -> None:
    want = truth.expected_windows(5, 185.0)
    newest = {u: df.groupby("service_id")["start"].transform("max") for u, df in want.items()}
    # one meter emitted only its first window, the others all but their last
    first = {u: df["service_id"].iloc[0] for u, df in want.items()}
    closed = {}
    for u, df in want.items():
        keep = df["start"] < newest[u]
        mine = df["service_id"] == first[u]
        keep &= ~mine | (df["start"] == df.loc[mine, "start"].min())
        closed[u] = df[keep].copy()
    assert truth.compare(closed, want, frontier="meter")[0] == "ok"
    assert truth.compare(closed, want, frontier="utility")[0].startswith("WRONG")
    # a window lost below a meter's newest emitted one is an error
    holed = {u: df.copy() for u, df in closed.items()}
    other = holed["gas"][holed["gas"]["service_id"] != first["gas"]]
    holed["gas"] = holed["gas"].drop(other.index[0])
    assert truth.compare(holed, want, frontier="meter")[0].startswith("WRONG: gas:")
