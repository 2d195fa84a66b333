"""Gaps and continuous-flow leaks from the embedded engine equal a brute force over the
readings (pure pandas over the readings themselves, not over windows)."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest

from auth_kappa import Engine
from auth_kappa.config import Config
from auth_kappa.errors import UserError
from auth_kappa.insights.stage import InsightRules

T0 = 1_772_409_600
GAP_AFTER = 300


def _fleet(meters: int, hours: int, seed: int, utility: str) -> pd.DataFrame:
    """Readings every 5 s; some meters miss random stretches (short and long), some water
    meters leak (a constant flow added for a while), others use water in bursts."""
    rng = np.random.default_rng(seed)
    ends = T0 + 5 + 5 * np.arange(hours * 720)
    frames = []
    for i in range(meters):
        sid = str(uuid.UUID(int=seed * 10_000 + i, version=4))
        use = np.where(rng.random(len(ends)) < 0.01, rng.uniform(0.5, 2, len(ends)), 0.0)
        if i % 3 == 0:   # leaking from a random hour on: 12 gallons an hour
            use = use + np.where(ends >= T0 + 3600 * rng.integers(0, hours // 2), 12 / 720, 0)
        keep = np.ones(len(ends), bool)
        for _ in range(rng.integers(0, 4)):   # silences of 1 to 40 minutes
            lo = rng.integers(0, len(ends))
            keep[lo:lo + rng.integers(12, 480)] = False
        frames.append(pd.DataFrame({"service_id": sid, "end_ts": ends[keep],
                                    "consumption": use[keep].round(6)}))
    df = pd.concat(frames, ignore_index=True).sort_values("end_ts", kind="stable")
    df["utility"], df["user_name"], df["type"], df["state"] = utility, "x", "household", "CA"
    df["start_ts"] = df["end_ts"] - 5
    return df.reset_index(drop=True)


def _run(df: pd.DataFrame, folder, **options) -> Engine:
    """Through the simulator's file format: one CSV per utility in a folder."""
    e = Engine.embedded(["1m", "1h"], **options)
    df[["service_id", "user_name", "type", "start_ts", "state", "consumption", "end_ts"]].to_csv(
        folder / f"{df['utility'].iloc[0]}.csv", header=False, index=False)
    e.ingest(folder)
    e.flush()
    return e


def _gaps(df: pd.DataFrame, gap_after: float = GAP_AFTER) -> set[tuple]:
    """(service_id, start, end or None): every silence of gap_after s or more between two
    readings, and a meter silent at the end while the others went on."""
    out = set()
    high = df["end_ts"].max()
    for sid, g in df.groupby("service_id"):
        t = np.sort(g["end_ts"].to_numpy())
        for k in np.flatnonzero(np.diff(t) >= gap_after):
            out.add((sid, float(t[k]), float(t[k + 1])))
        if high - t[-1] >= gap_after:
            out.add((sid, float(t[-1]), None))
    return out


def _leaks(df: pd.DataFrame, flow: float = InsightRules().leak_flow, hours: int = 24
           ) -> set[tuple]:
    """(service_id, start, end or None): runs of consecutive hours each >= flow, at least
    `hours` long; the end is the first hour that breaks the run."""
    out = set()
    hourly = df.assign(h=df["end_ts"] // 3600 * 3600).groupby(["service_id", "h"])[
        "consumption"].sum()
    last_hour = df["end_ts"].max() // 3600 * 3600
    for sid, s in hourly.groupby(level=0):
        s = s.droplevel(0)
        run: list[int] = []
        for h in range(int(s.index.min()), int(last_hour) + 3600, 3600):
            if s.get(h, -1.0) >= flow:
                run.append(h)
                continue
            if len(run) >= hours:
                out.add((sid, float(run[0]), float(h if h in s.index else run[-1] + 3600)))
            run = []
        if len(run) >= hours:
            out.add((sid, float(run[0]), None))
    return out


def _found(e: Engine, kind: str) -> set[tuple]:
    a = e.alerts(kind=kind)
    return {(r.service_id, r.start.timestamp(), None if pd.isna(r.end) else r.end.timestamp())
            for r in a.itertuples()}


@pytest.mark.parametrize(("seed", "gap_after"), [(1, GAP_AFTER), (2, GAP_AFTER), (3, 30)])
def test_gaps_equal_the_brute_force_over_the_readings(seed, gap_after, tmp_path):
    """30 s: shorter than a 1-minute window, so gaps inside one window count too."""
    df = _fleet(meters=40, hours=6, seed=seed, utility="gas")
    want = _gaps(df, gap_after)
    assert len(want) >= 20
    e = _run(df, tmp_path, insights=InsightRules(gap_after=gap_after))
    assert _found(e, "gap") == want
    missing = e.alerts(kind="gap").dropna(subset=["end"])
    assert (missing["value"] == ((missing["end"] - missing["start"]).dt.total_seconds() // 5
                                 - 1)).all()


def test_leaks_equal_the_brute_force_over_the_readings(tmp_path):
    df = _fleet(meters=15, hours=40, seed=3, utility="water")
    want = _leaks(df)
    assert len(want) >= 4
    assert _found(_run(df, tmp_path), "leak") == want


def test_leak_flow_is_per_meter_type(tmp_path):
    """AUTH_LEAK_FLOW "9.5,business=15": a business's 12 gallons an hour is its normal
    use, a household's is a leak; each type against the brute force with its own flow."""
    df = _fleet(meters=9, hours=30, seed=7, utility="water")
    business = df["service_id"].isin(df["service_id"].unique()[1::2])
    df.loc[business, "type"] = "business"
    config = Config.load(env={"AUTH_LEAK_FLOW": "9.5,business=15"})
    rules = InsightRules.from_config(config)
    assert (rules.leak_flow, rules.leak_flows) == (9.5, {"business": 15.0})
    want = _leaks(df[~business]) | _leaks(df[business], flow=15.0)
    assert _leaks(df[business]) - want, "some business meters must be spared by their flow"
    e = _run(df, tmp_path, insights=rules)
    assert _found(e, "leak") == want
    for bad in ("business=0", "shop=3", "x"):
        with pytest.raises(UserError, match="AUTH_LEAK_FLOW") as err:
            InsightRules.from_config(Config.load(env={"AUTH_LEAK_FLOW": bad}))
        assert "\n" not in str(err.value)


def test_alerts_filter_by_kind_utility_and_meter(tmp_path):
    df = _fleet(meters=6, hours=26, seed=4, utility="water")
    e = _run(df, tmp_path)
    every = e.alerts()
    assert list(every.columns) == ["kind", "utility", "service_id", "start", "end", "value",
                                   "detail"]
    assert str(every["start"].dtype) == "datetime64[ns, UTC]"
    sid = every["service_id"].iloc[0]
    mine = e.alerts(service_id=sid)
    assert len(mine) and (mine["service_id"] == sid).all()
    assert len(e.alerts(utility="gas")) == 0
    assert set(e.alerts(kind="leak")["kind"]) == {"leak"}


def _daily(meters: int, days: int, seed: int, utility: str = "gas") -> tuple[pd.DataFrame, set]:
    """A daily shape with noise; a few meters get one hour at 4-8x their busiest level."""
    rng = np.random.default_rng(seed)
    ends = T0 + 5 + 5 * np.arange(days * 17280)
    hour_of_day = ends // 3600 % 24
    frames, injected = [], set()
    for i in range(meters):
        sid = str(uuid.UUID(int=seed * 10_000 + i, version=4))
        shape = 0.002 + 0.004 * (1 + np.sin(hour_of_day / 24 * 2 * np.pi + i))
        use = shape * rng.uniform(0.7, 1.3, len(ends))
        if i % 3 == 0:
            hour = T0 + 3600 * int(rng.integers(24 * 4, 24 * days))
            inside = (ends >= hour) & (ends < hour + 3600)   # the engine's hour window
            use[inside] += 0.012 * rng.uniform(4, 8)
            injected.add((sid, hour))
        frames.append(pd.DataFrame({"service_id": sid, "end_ts": ends,
                                    "consumption": use.round(6)}))
    df = pd.concat(frames, ignore_index=True).sort_values("end_ts", kind="stable")
    df["utility"], df["user_name"], df["type"], df["state"] = utility, "x", "household", "CA"
    df["start_ts"] = df["end_ts"] - 5
    return df.reset_index(drop=True), injected


def _spikes(df: pd.DataFrame, days: int = 14, min_days: int = 3, k: float = 6.0,
            ratio: float = 3.0, zone: str = "America/Los_Angeles") -> set[tuple]:
    """(service_id, hour start): the rule of README, Insights, over hourly sums (every
    meter here is in CA)."""
    hourly = df.assign(h=df["end_ts"] // 3600 * 3600)
    hourly = hourly.groupby(["service_id", "h"])["consumption"].sum()

    def weekend(t: int) -> bool:
        return pd.Timestamp(t, unit="s", tz="UTC").tz_convert(zone).weekday() >= 5

    out = set()
    for (sid, h), total in hourly.items():
        base = [hourly.get((sid, h - 86400 * d)) for d in range(1, days + 1)
                if weekend(h - 86400 * d) == weekend(h)]
        base = np.array([b for b in base if b is not None])
        if len(base) < min_days:
            continue
        med = np.median(base)
        mad = 1.4826 * np.median(np.abs(base - med))
        if total > max(med + k * mad, ratio * med) and total > 0:
            out.add((sid, float(h)))
    return out


def test_spikes_equal_the_brute_force_and_find_the_injected_hours(tmp_path):
    df, injected = _daily(meters=6, days=5, seed=5)
    want = _spikes(df)
    e = _run(df, tmp_path)
    got = e.alerts(kind="spike")
    assert {(r.service_id, r.start.timestamp()) for r in got.itertuples()} == want
    assert {(s, float(h)) for s, h in injected} <= want
    assert ((got["end"] - got["start"]).dt.total_seconds() == 3600).all()


def test_gap_estimates_follow_last_week_else_a_line_and_stay_apart(tmp_path):
    """Meter A misses 40 minutes on day 8 (last week's same hours are known); meter B
    misses 30 minutes on day 1 (no history: a line between the readings around it)."""
    ends = T0 + 5 + 5 * np.arange(8 * 17280)
    rng = np.random.default_rng(8)
    a, b = (str(uuid.UUID(int=77_000 + i, version=4)) for i in range(2))
    use = {a: rng.uniform(0, 0.02, len(ends)).round(6), b: rng.uniform(0, 0.02, len(ends)).round(6)}
    holes = {a: (T0 + 7 * 86400 + 3 * 3600 + 600, 2400), b: (T0 + 6 * 3600 + 300, 1800)}
    frames = []
    for sid in (a, b):
        lo, n = holes[sid]
        keep = ~((ends >= lo) & (ends < lo + n))
        frames.append(pd.DataFrame({"service_id": sid, "end_ts": ends[keep],
                                    "consumption": use[sid][keep]}))
    df = pd.concat(frames, ignore_index=True).sort_values("end_ts", kind="stable")
    df["utility"], df["user_name"], df["type"], df["state"] = "gas", "x", "household", "CA"
    df["start_ts"] = df["end_ts"] - 5
    e = _run(df.reset_index(drop=True), tmp_path, meter_retention="9d")

    hourly = df.assign(h=df["end_ts"] // 3600 * 3600).groupby(["service_id", "h"])[
        "consumption"].sum()
    want: dict[str, pd.Series] = {}
    for sid in (a, b):
        lo, n = holes[sid]
        t = np.arange(lo, lo + n, 5)
        week = np.array([hourly.get((sid, h - 7 * 86400), np.nan) / 720
                         for h in t // 3600 * 3600])
        before = df[(df.service_id == sid) & (df.end_ts == lo - 5)]["consumption"].iloc[0]
        after = df[(df.service_id == sid) & (df.end_ts == lo + n)]["consumption"].iloc[0]
        line = before + (after - before) * np.arange(1, len(t) + 1) / (len(t) + 1)
        est = np.where(np.isfinite(week), week, line)
        assert np.isfinite(week).all() == (sid == a)
        want[sid] = pd.Series(est).groupby(t // 3600 * 3600).sum()
    for sid in (a, b):
        w = e.windows("meter", "gas", "1h", key=sid)
        w = w.set_index(w["window_start"].map(lambda x: int(x.timestamp())))
        mine = df[df.service_id == sid]
        measured = mine.groupby(mine["end_ts"] // 3600 * 3600)["consumption"].sum()
        assert list(w.index) == list(measured.index)   # no window made up for the gap
        np.testing.assert_allclose(w["sum"], measured, rtol=1e-9)
        expected = want[sid][want[sid].index.isin(measured.index)]
        got = w["estimated"][w["estimated"] > 0]
        assert len(expected) >= 1 and list(got.index) == list(expected.index)
        np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-9)
    gaps = e.alerts(kind="gap").set_index("service_id")
    assert "same hours last week" in gaps.loc[a, "detail"]
    assert "a line between" in gaps.loc[b, "detail"]
    state = e.windows("state", "gas", "1h", key="CA")
    assert state["estimated"].sum() == pytest.approx(sum(s.sum() for s in want.values()))
    # (hourly windows around 40- and 30-minute gaps all have readings)


def test_a_gap_detectors_partition_lookup_adds_no_meter_and_never_reads_past_its_arrays():
    """partition_of answers for meters the detector holds; a meter only the shared index
    knows (another detector added it) or nobody knows is None, and asking adds nothing."""
    from auth_kappa.insights.gaps import GapDetector
    from auth_kappa.insights.meters import MeterIndex

    index = MeterIndex()
    gaps = GapDetector("water", meters=index)
    held, other, unknown = (str(uuid.uuid4()) for _ in range(3))
    gaps.remember(held, 1772409600.0, 3)
    index.row_of(other)          # a leak or spike detector's meter: past gaps' arrays
    assert gaps.partition_of(held) == 3
    assert gaps.partition_of(other) is None
    size = len(index)
    assert gaps.partition_of(unknown) is None and gaps.partition_of("not-a-uuid") is None
    assert len(index) == size
    assert index.find(held) == index.row_of(held) and index.find(unknown) is None


def test_local_hours_equal_zoneinfo_per_row_across_a_dst_change():
    """Bills and peaks put readings in local hours per (zone, UTC hour); a brute force
    with zoneinfo per row must agree, also over the night clocks go forward."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from auth_kappa import timezones

    names = ["America/New_York", "America/Phoenix", "Pacific/Honolulu", "America/Denver",
             "UTC"]
    rng = np.random.default_rng(5)
    starts = 1772841600 + rng.integers(0, 3 * 86400, 5000)   # 2026-03-07..09 (DST on 8th)
    zones = np.array(names, object)[rng.integers(0, len(names), 5000)]
    date, hour, weekday = timezones.local_hours(starts, zones)
    for i in range(5000):
        local = dt.datetime.fromtimestamp(int(starts[i]), ZoneInfo(zones[i]))
        assert (date[i], hour[i], weekday[i]) == (local.date().isoformat(), local.hour,
                                                  local.weekday()), (starts[i], zones[i])
