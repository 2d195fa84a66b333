"""Days and bills from the embedded engine equal a brute force over the readings: local
days of the meter's state (DST included), peak 15-minute use, time-of-use totals priced by
the example tariff."""

from __future__ import annotations

import uuid
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from auth_kappa import Engine
from auth_kappa.errors import UserError
from auth_kappa.insights.tariff import Tariff

T0 = 1_772_409_600 + 5 * 86400   # 2026-03-07 UTC; US daylight saving time starts on the 8th
STATES = {"CA": "America/Los_Angeles", "NY": "America/New_York", "AZ": "America/Phoenix"}


def _readings(days: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(9)
    ends = T0 + 5 + 5 * np.arange(days * 17280)
    frames = []
    for i, state in enumerate(STATES):
        sid = str(uuid.UUID(int=90_000 + i, version=4))
        use = rng.uniform(0, 0.01, len(ends)) * (1 + (ends // 3600 % 24 == 18) * 5)
        frames.append(pd.DataFrame({"service_id": sid, "state": state, "end_ts": ends,
                                    "consumption": use.round(6)}))
    df = pd.concat(frames, ignore_index=True).sort_values("end_ts", kind="stable")
    df["user_name"], df["type"], df["start_ts"] = "x", "household", df["end_ts"] - 5
    return df.reset_index(drop=True)


def _engine(df: pd.DataFrame, folder, utility: str = "electricity") -> Engine:
    df[["service_id", "user_name", "type", "start_ts", "state", "consumption", "end_ts"]].to_csv(
        folder / f"{utility}.csv", header=False, index=False)
    e = Engine.embedded(["1m", "1h"])
    e.ingest(folder)
    e.flush()
    return e


def _local(df: pd.DataFrame) -> pd.DataFrame:
    """Each reading's 1-minute window start in its meter's local time (the brute force)."""
    out = []
    for state, g in df.groupby("state"):
        ws = g["end_ts"] // 60 * 60
        local = pd.to_datetime(ws, unit="s", utc=True).dt.tz_convert(ZoneInfo(STATES[state]))
        out.append(g.assign(ws=ws, day=local.dt.strftime("%Y-%m-%d"), hour=local.dt.hour,
                            weekday=local.dt.day_of_week))
    return pd.concat(out)


def test_daily_totals_and_peaks_equal_the_brute_force(tmp_path):
    df = _readings()
    e = _engine(df, tmp_path)
    loc = _local(df)
    for sid, g in loc.groupby("service_id"):
        quarters = g.groupby(["day", g["ws"] // 900])["consumption"].sum()
        want = pd.DataFrame({"total": g.groupby("day")["consumption"].sum(),
                             "peak": quarters.groupby(level=0).max()})
        got = e.days(sid).set_index("day")
        assert list(got.index) == list(want.index)
        np.testing.assert_allclose(got["total"], want["total"], rtol=1e-9)
        np.testing.assert_allclose(got["peak_15min"], want["peak"], rtol=1e-9)
        np.testing.assert_allclose(got["peak_kw"], want["peak"] * 4, rtol=1e-9)
    lengths = loc[loc["state"] == "NY"].groupby("day")["ws"].agg(lambda w: w.max() - w.min())
    assert lengths.loc["2026-03-08"] == 23 * 3600 - 60   # a 23-hour local day (DST)


def test_a_bill_prices_each_hour_by_the_tariff(tmp_path):
    df = _readings()
    e = _engine(df, tmp_path)
    loc = _local(df)
    weekday = loc["weekday"] < 5
    period = np.where(weekday & (loc["hour"] >= 16) & (loc["hour"] < 21), "peak",
                      np.where(weekday & (loc["hour"] >= 7) & (loc["hour"] < 16), "mid-peak",
                               "off-peak"))
    prices = {p.name: p.price for p in Tariff.load().periods["electricity"]}
    for sid, g in loc.assign(period=period).groupby("service_id"):
        use = g[g["day"].str.startswith("2026-03")].groupby("period")["consumption"].sum()
        bill = e.bill(sid, "2026-03").set_index("period")
        np.testing.assert_allclose(bill.loc[use.index, "consumption"], use, rtol=1e-9)
        np.testing.assert_allclose(bill.loc[use.index, "cost"],
                                   [use[p] * prices[p] for p in use.index], rtol=1e-9)
    with pytest.raises(UserError):
        e.bill(df["service_id"].iloc[0], "2026-04")


def test_a_gas_bill_prices_the_ccf_the_meters_read(tmp_path):
    """Gas readings are in ccf (as the simulator writes them) and so is the gas price."""
    df = _readings(days=1)
    e = _engine(df, tmp_path, "gas")
    price = Tariff.load().periods["gas"][0].price
    for sid, g in _local(df).groupby("service_id"):
        use = g[g["day"].str.startswith("2026-03")]["consumption"].sum()
        bill = e.bill(sid, "2026-03")
        assert list(bill["unit"]) == ["ccf"] and set(e.days(sid)["unit"]) == {"ccf"}
        np.testing.assert_allclose(bill["consumption"], [use], rtol=1e-9)
        np.testing.assert_allclose(bill["cost"], [use * price], rtol=1e-9)


def test_a_broken_tariff_is_one_line(tmp_path):
    bad = tmp_path / "t.toml"
    bad.write_text('[electricity]\nperiods = [{ name = "x", days = ["funday"], price = 1 }]\n')
    with pytest.raises(UserError, match="unknown weekday 'funday'"):
        Tariff.load(bad)


def test_similar_homes_equal_the_exact_rank_among_the_same_state_and_type(tmp_path):
    rng = np.random.default_rng(3)
    ends = T0 + 5 + 60 * np.arange(2 * 1440)     # 2 days, a reading a minute
    frames = []
    for i, (state, kind) in enumerate([("CA", "household")] * 24 + [("CA", "business")] * 8 +
                                      [("NY", "household")] * 8):
        sid = str(uuid.UUID(int=95_000 + i, version=4))
        frames.append(pd.DataFrame({"service_id": sid, "state": state, "type": kind,
                                    "end_ts": ends, "consumption":
                                    rng.uniform(0, 0.02 * (1 + i % 5), len(ends)).round(6)}))
    df = pd.concat(frames, ignore_index=True).sort_values("end_ts", kind="stable")
    df["user_name"], df["start_ts"] = "x", df["end_ts"] - 60
    e = _engine(df, tmp_path)
    loc = _local(df)
    totals = loc.groupby(["state", "type", "day", "service_id"])["consumption"].sum()
    checked = 0
    for (state, kind, day), group in totals.groupby(level=[0, 1, 2]):
        for sid, total in group.droplevel([0, 1, 2]).items():
            got = e.similar_homes(sid, day)
            assert len(got) == 1, (sid, day)
            want = 100.0 * (group <= total).sum() / len(group)
            assert got["percentile"].iloc[0] == pytest.approx(want)
            assert got["homes"].iloc[0] == len(group)
            assert (got["state"].iloc[0], got["type"].iloc[0]) == (state, kind)
            checked += 1
    assert checked >= 80
    assert e.similar_homes(df["service_id"].iloc[0], "2026-01-01").empty
