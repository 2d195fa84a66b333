"""A replay correction closes the gaps late readings fill (issue 12): live workers saw
stretches of readings arrive after their windows were final, so they closed gaps that
were not there; the archive holds every reading, and `replay correct` over the range
leaves Redis holding exactly the gaps of all the readings (a brute force), wholly
filled gaps removed and partly filled ones split. A second run changes nothing."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest

from auth_kappa import Engine
from auth_kappa.archive.embedded import EmbeddedArchive
from auth_kappa.archive.local_store import LocalStore
from auth_kappa.config import Config
from auth_kappa.runtime.live import LiveRuntime
from auth_kappa.state.redis_store import RedisWindowStore
from auth_kappa.topology.decode import Message
from auth_kappa.topology.processor import Topology
from replay.correct import CorrectionReport, correct
from replay.plan import make_plan
from replay.rebuild import build
from tests.test_bills import _local
from tests.test_insights import T0, _fleet, _gaps, _leaks

pytestmark = pytest.mark.stack
HOURS = 4


@pytest.fixture
def gap_config(stack, unique):
    c = Config.load(env={"AUTH_REDIS_URL": stack.redis_url, "AUTH_NAMESPACE": f"gf{unique}",
                         "AUTH_GROUP": f"gf{unique}", "AUTH_WINDOWS": "1m,1h"})
    yield c
    RedisWindowStore.from_config(c).drop_namespace()


def _delayed(df: pd.DataFrame, seed: int) -> np.ndarray:
    """Readings of every other meter sent after everything else, so their windows are long
    final when they arrive: the 15 minutes before its first real gap if it has one in the
    first 2.5 hours (live then sees that gap longer than it is), else 10-40 minutes in the
    first two hours (live sees a gap that is not there)."""
    rng = np.random.default_rng(seed)
    late = np.zeros(len(df), bool)
    real = _gaps(df)
    for sid in df["service_id"].unique()[::2]:
        starts = sorted(g[1] for g in real if g[0] == sid and g[1] < T0 + 9000)
        if starts:
            lo, hi = starts[0] - 900, starts[0] + 1
        else:
            lo = T0 + rng.integers(600, 2 * 3600 - 2400)
            hi = lo + rng.integers(600, 2400)
        late |= ((df["service_id"] == sid) & (df["end_ts"] >= lo) &
                 (df["end_ts"] < hi)).to_numpy()
    return late


def _closed(gaps: set[tuple], high: float, grace: float) -> set[tuple]:
    """Closed gaps final in the live namespace (what a correction reconciles)."""
    return {g for g in gaps if g[2] is not None and g[2] + grace <= high}


def _held(config: Config, kind: str = "gap") -> set[tuple]:
    df = Engine.connect(config).alerts(kind=kind)
    return {(r.service_id, r.start.timestamp(), r.end.timestamp())
            for r in df.itertuples() if not pd.isna(r.end)}


def _correction(config: Config, root, hours: int = HOURS) -> CorrectionReport:
    store = LocalStore(root)
    plan = asyncio.run(make_plan(store, T0, T0 + hours * 3600 + 3600, ("water",),
                                 {"water": "water"}))
    return correct(config, store, plan, RedisWindowStore.from_config(config))


def _correct(config: Config, root, hours: int = HOURS) -> dict:
    return vars(_correction(config, root, hours).gaps)


def _live(config: Config, df: pd.DataFrame, late: np.ndarray, root) -> None:
    """The readings into the archive and through a live runtime, in arrival order: the
    delayed ones last, so they are routed late."""
    order = np.r_[np.flatnonzero(~late), np.flatnonzero(late)]
    lines = (df["service_id"] + ",x,household," + df["start_ts"].astype(str) + ",CA," +
             df["consumption"].astype(str) + "," + df["end_ts"].astype(str)).str.encode("ascii")
    msgs = [Message(lines.iloc[i], 0, k) for k, i in enumerate(order.tolist())]
    archive = EmbeddedArchive(root)
    archive.add("water", msgs)
    archive.flush()
    rt = LiveRuntime(Topology.from_config(config, live=False),
                     RedisWindowStore.from_config(config), emit=lambda *a: None,
                     commit_interval=3600)
    rt.place({"water": 1})
    rt.assign([("water", 0)])
    for lo in range(0, len(msgs), 5000):
        rt.process("water", msgs[lo:lo + 5000])
        rt.checkpoint()
    assert rt.counters.late == int(late.sum()), "every delayed reading was routed late"


def test_a_correction_closes_the_gaps_late_readings_fill(gap_config, tmp_path):
    config = gap_config
    df = _fleet(meters=8, hours=HOURS, seed=12, utility="water")
    late = _delayed(df, seed=3)
    _live(config, df, late, tmp_path / "archive")
    high = float(df["end_ts"].max())
    seen = _closed(_gaps(df[~late]), high, config.grace)
    truth = _closed(_gaps(df), high, config.grace)
    assert _held(config) == seen
    assert len(seen - truth) >= 3, "the delays must make gaps that are not there"
    assert truth - seen, "and some real gaps must be split by late readings"

    fix = _correct(config, tmp_path / "archive")
    assert _held(config) == truth
    assert fix["removed"] == len(seen - truth) and fix["added"] == len(truth - seen)
    again = _correct(config, tmp_path / "archive")
    assert again["removed"] == again["added"] == 0 and _held(config) == truth


def test_a_correction_mends_a_leak_run_a_late_hour_broke(gap_config, tmp_path):
    """A leaking meter's hour that arrived late left live an hour without readings, which
    ends a run: live closed the leak there. The correction finds the run unbroken."""
    config = gap_config
    hours = 52
    df = _fleet(meters=3, hours=hours, seed=21, utility="water")
    leaks = _leaks(df)
    end = T0 + hours * 3600
    sid, start, _ = min(g for g in leaks if (g[2] is None or g[2] >= end) and
                        g[1] + 26 * 3600 < end - 3600)   # leaking to the end
    broken = start + 25 * 3600
    late = ((df["service_id"] == sid) & (df["end_ts"] >= broken) &
            (df["end_ts"] < broken + 3600)).to_numpy()
    _live(config, df, late, tmp_path / "archive")
    high = float(df["end_ts"].max())
    seen = _closed(_leaks(df[~late]), high, config.grace)
    truth = _closed(leaks, high, config.grace)
    assert _held(config, "leak") == seen and (sid, start, broken) in seen
    fix = _correct(config, tmp_path / "archive", hours)
    assert _held(config, "leak") == truth and (sid, start, broken) not in truth
    assert _held(config) == _closed(_gaps(df), high, config.grace)   # its gap too
    assert fix["removed"] >= 2   # the leak and the hour's gap


def test_a_rebuild_carries_alerts_and_days_into_the_new_namespace(gap_config, tmp_path):
    """The rebuild's archive part writes the insight state a worker would have left (so
    after the switch the workers carry on from it): its gaps and its meters' days equal
    the brute force over what is final at the archive's end."""
    config = gap_config
    df = _fleet(meters=6, hours=HOURS, seed=13, utility="water")
    lines = (df["service_id"] + ",x,household," + df["start_ts"].astype(str) + ",CA," +
             df["consumption"].astype(str) + "," + df["end_ts"].astype(str)).str.encode("ascii")
    archive = EmbeddedArchive(tmp_path / "archive")
    archive.add("water", [Message(v, 0, k) for k, v in enumerate(lines.tolist())])
    archive.flush()
    store = LocalStore(tmp_path / "archive")
    plan = asyncio.run(make_plan(store, T0, None, ("water",), {"water": "water"}))
    build(config, store, plan, RedisWindowStore.from_config(config))
    high = float(df["end_ts"].max())
    want = {g for g in _gaps(df) if g[2] is not None and
            g[2] // 60 * 60 + 60 + config.grace <= high}
    assert len(want) >= 4
    assert _held(config) == want
    engine = Engine.connect(config)
    # an open day takes whole quarters (the next owner re-reads the one still filling)
    cut = (high - config.grace - 60) // 60 * 60 + 60
    taken = df["end_ts"] // 900 * 900 + 900 <= cut
    for sid, g in df[taken].groupby("service_id"):
        days = engine.days(sid)
        assert days.loc[days["utility"] == "water", "total"].sum() == pytest.approx(
            g["consumption"].sum(), rel=1e-9)


def test_a_correction_rewrites_the_days_late_readings_fall_in(gap_config, tmp_path):
    """Readings of two meters' past local day (CA: 2026-03-02 is 08:00 to 08:00 UTC)
    arrived late: live's day, and so the month's bill, missed them. The correction gives
    every day the brute force over all the readings; a second run changes nothing."""
    config = gap_config
    hours = 52
    df = _fleet(meters=4, hours=hours, seed=5, utility="water")
    late_meters = df["service_id"].unique()[::2]
    late = (df["service_id"].isin(late_meters) & (df["end_ts"] >= T0 + 10 * 3600) &
            (df["end_ts"] < T0 + 11 * 3600)).to_numpy()
    _live(config, df, late, tmp_path / "archive")

    def days(frame: pd.DataFrame) -> dict:   # the past days: live writes the open one
        totals = _local(frame).groupby(["service_id", "day"])["consumption"].sum()
        return {k: v for k, v in totals.items() if k[1] < "2026-03-03"}

    def held() -> dict:
        e = Engine.connect(config)
        return {(sid, r.day): r.total for sid in df["service_id"].unique()
                for r in e.days(sid).itertuples() if r.day < "2026-03-03"}

    def bills() -> dict:
        return {sid: Engine.connect(config).bill(sid, "2026-03")["consumption"].sum()
                for sid in late_meters}

    seen, truth = days(df[~late]), days(df)
    assert held() == pytest.approx(seen, rel=1e-9)
    assert {k for k in truth if not truth[k] == pytest.approx(seen[k])} == \
        {(sid, "2026-03-02") for sid in late_meters}
    before = bills()
    report = _correction(config, tmp_path / "archive", hours)
    assert held() == pytest.approx(truth, rel=1e-9)
    assert (report.days.changed, report.days.added, report.days.unchanged) == (2, 0, 2)
    missed = df[late].groupby("service_id")["consumption"].sum()
    assert {s: b - before[s] for s, b in bills().items()} == pytest.approx(missed.to_dict())
    again = _correction(config, tmp_path / "archive", hours).days
    assert (again.changed, again.added, again.unchanged) == (0, 0, 4)
