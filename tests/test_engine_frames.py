"""Engine results as a pandas user expects them (issue 10, section 3): window and reading
times as datetime64[ns, UTC], the watermark as a UTC pd.Timestamp, a unit on every frame,
the same columns and dtypes with no rows, and a progress bar only on a terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import random
import struct
import subprocess
import sys
import termios
import uuid
from pathlib import Path

import pandas as pd
import pytest

from auth_kappa import Engine
from auth_kappa.config import Config
from auth_kappa.errors import UserError
from auth_kappa.runtime.live import LiveRuntime
from auth_kappa.state.redis_store import RedisWindowStore
from auth_kappa.topology.decode import Message
from auth_kappa.topology.processor import Topology

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_772_409_600  # 2026-03-02T00:00:00Z
UNIT = {"electricity": "kWh", "gas": "ccf", "water": "gallons"}   # the README's units
TIME = pd.DatetimeTZDtype("ns", "UTC")
METERS = [(str(uuid.UUID(int=i + 1, version=4)), ("CA", "NY", "TX")[i % 3]) for i in range(4)]


def _readings(n: int = 400, seed: int = 7) -> list[tuple[str, str, int, float]]:
    """(service_id, state, end_ts, consumption) in time order, on the 5 s heartbeat."""
    rng = random.Random(seed)
    return [(*METERS[rng.randrange(len(METERS))], T0 + 5 * i, round(rng.uniform(0, 2), 6))
            for i in range(n)]


def _lines(readings) -> list[str]:
    return [f"{sid},u,household,{end - 5},{st},{v},{end}" for sid, st, end, v in readings]


def _reference(readings, size: int, level: str) -> pd.DataFrame:
    """Windows by pandas' own datetime flooring: a reading's window holds its end_ts."""
    df = pd.DataFrame(readings, columns=["meter", "state", "end", "value"])
    df["key"] = df["meter"] if level == "meter" else df["state"]
    df["window_start"] = pd.to_datetime(df["end"], unit="s", utc=True).dt.floor(f"{size}s")
    return (df.groupby(["key", "window_start"])["value"].agg(["sum", "count"])
            .reset_index().sort_values(["key", "window_start"], ignore_index=True))


def _dtypes(df: pd.DataFrame) -> dict[str, str]:
    return {c: str(t) for c, t in df.dtypes.items()}


def test_windows_are_utc_datetimes_with_their_unit():
    readings = _readings()
    eng = Engine.embedded(["1m", "1h"], grace="0s")
    for u in ("electricity", "gas"):
        eng.ingest(_lines(readings), utility=u)
    eng.flush()
    for u in ("electricity", "gas"):
        for size, label in ((60, "1m"), (3600, "1h")):
            for level in ("meter", "state"):
                got = eng.windows(level, u, label)
                assert got["window_start"].dtype == TIME and got["window_end"].dtype == TIME
                assert (got["window_end"] - got["window_start"] ==
                        pd.Timedelta(seconds=size)).all()
                want = _reference(readings, size, level)
                assert got["key"].tolist() == want["key"].tolist()
                assert got["window_start"].tolist() == want["window_start"].tolist()
                assert got["count"].tolist() == want["count"].tolist()
                assert got["sum"].to_numpy() == pytest.approx(want["sum"].to_numpy(), abs=1e-9)
                assert set(got["unit"]) == {UNIT[u]}


def test_frames_keep_their_columns_and_dtypes_when_empty():
    full = Engine.embedded("1m", grace="0s")
    # the second reading's window closed when the first arrived: it is routed late
    full.ingest(_lines([(*METERS[0], T0 + 300, 1.5), (*METERS[1], T0 + 5, 0.25)]),
                utility="water")
    empty = Engine.embedded("1m", grace="0s")
    for level in ("meter", "state"):
        a, b = full.windows(level, "water"), empty.windows(level, "water")
        assert len(a) and not len(b)
        assert _dtypes(a) == _dtypes(b)
    full.ingest(["not a reading"], utility="water")
    assert len(full.quarantine()) == 1 and not len(empty.quarantine())
    assert _dtypes(full.quarantine()) == _dtypes(empty.quarantine())
    late, none = full.late(), empty.late()
    assert len(late) == 1 and len(none) == 0
    assert _dtypes(late) == _dtypes(none) and "unit" in none.columns
    row = late.iloc[0]
    assert row["service_id"] == METERS[1][0] and row["consumption"] == 0.25
    assert row["start_ts"] == pd.Timestamp("2026-03-02T00:00:00Z")
    assert row["end_ts"] == pd.Timestamp("2026-03-02T00:00:05Z")
    assert late["start_ts"].dtype == TIME and row["unit"] == UNIT["water"]


def test_watermark_is_a_utc_timestamp():
    eng = Engine.embedded("1m", grace="0s")
    assert eng.watermark("gas") is None          # no reading yet
    readings = _readings(50)
    eng.ingest(_lines(readings), utility="gas")
    newest = max(end for _, _, end, _ in readings)
    assert eng.watermark("gas") == pd.Timestamp(newest, unit="s", tz="UTC")
    assert eng.watermark("gas").tz is not None and eng.watermark("water") is None
    eng.flush()                                  # end of input: every window is final
    assert eng.watermark("gas") == pd.Timestamp.max.tz_localize("UTC")
    with pytest.raises(UserError, match="utility must be one of"):
        eng.watermark("steam")


@pytest.mark.stack
def test_connect_gives_the_same_frames_as_embedded(stack, unique):
    """Engine.connect reads Redis (epoch seconds inside) and answers in the same shape."""
    config = Config.load(windows="1m", namespace=f"frames{unique}")
    specs = config.window_specs()
    store = RedisWindowStore.connect(stack.redis_url, config.namespace, specs,
                                     group=config.group)
    rt = LiveRuntime(Topology(specs, grace=30), store, emit=lambda *a: None,
                     commit_interval=0)
    rt.assign([("gas", 0)])
    readings = _readings(120)
    try:
        rt.process("gas", [Message(v.encode(), 0, i) for i, v in enumerate(_lines(readings))])
        rt.checkpoint()
        live = Engine.connect(config.with_(redis_url=stack.redis_url))
        eng = Engine.embedded("1m", grace="30s")
        eng.ingest(_lines(readings), utility="gas")
        sid = METERS[0][0]
        got, want = live.windows("meter", "gas", key=sid), eng.windows("meter", "gas", key=sid)
        # the live store keeps no gap estimates yet (NaN); the embedded engine found no gap
        assert got["estimated"].isna().all() and (want["estimated"] == 0).all()
        pd.testing.assert_frame_equal(got.drop(columns="estimated"),
                                      want.drop(columns="estimated"))
        assert live.watermark("gas") == eng.watermark("gas") == \
            pd.Timestamp(readings[-1][2], unit="s", tz="UTC")
        assert live.watermark("water") is None
        empty = live.windows("state", "water")
        assert not len(empty) and _dtypes(empty) == _dtypes(eng.windows("state", "gas"))
    finally:
        store.drop_namespace()


def _stderr(code: str, terminal: bool) -> bytes:
    """Run `code` in a fresh interpreter with stderr on a pseudo-terminal or a pipe."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if not terminal:
        return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              timeout=120, check=True).stderr
    parent, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 100 columns
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=child)
    os.close(child)
    out = b""
    while True:
        try:
            chunk = os.read(parent, 65536)
        except OSError:   # EIO: the child closed its end
            break
        if not chunk:
            break
        out += chunk
    os.close(parent)
    assert proc.wait(timeout=120) == 0, out.decode(errors="replace")
    return out


INGEST = """
import auth_kappa.progress as p
p.DELAY = 0            # a bar at once (long runs only, normally)
from auth_kappa import Engine
from tests.test_engine_frames import _lines, _readings
Engine.embedded("1m").ingest(_lines(_readings(3000)), utility="gas")
"""


@pytest.mark.parametrize("what", ["ingest", "simulate"])
def test_progress_bar_on_a_terminal_only(what, tmp_path):
    code = INGEST if what == "ingest" else (
        "import sys, auth_kappa.progress as p\np.DELAY = 0\n"
        "from auth_kappa.cli.main import main\n"
        f"sys.exit(main(['simulate', '--meters', '20', '--duration', '2m', '--out', "
        f"sys.argv[1] if len(sys.argv) > 1 else {str(tmp_path / 'sim')!r}]))")
    shown = _stderr(code, terminal=True)
    # tqdm's bar: "<what>: ... [00:01, 2.5kmessages/s]" (the end-of-run summary says "/s)")
    assert f"{what}:".encode() in shown and b"messages/s]" in shown, shown
    if what == "simulate":
        code = code.replace(str(tmp_path / "sim"), str(tmp_path / "sim2"))
    piped = _stderr(code, terminal=False)
    assert b"\r" not in piped and b"/s]" not in piped and b"%|" not in piped, piped
