"""decode_frames (a fetch's frames validated together) gives each frame exactly what
decode_frame_with_reference gives it alone: its readings, or the same reason, whatever
its neighbours. A bad frame among good ones must not take them down, nor pass with them."""

from __future__ import annotations

import random
import uuid

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from auth_kappa.topology.frames import (
    FRAME_SCHEMA,
    decode_frame_with_reference,
    decode_frames,
    encode_frame,
    write_ipc,
)


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "service_id": [str(uuid.UUID(int=int(i) + 1, version=4)) for i in range(n)],
        "user_name": [f"u{i}" for i in range(n)], "type": ["household"] * n,
        "start_ts": 1_772_409_600 + 5 * np.arange(n), "state": ["CA"] * n,
        "consumption": rng.random(n), "end_ts": 1_772_409_605 + 5 * np.arange(n)})


def _bad_utf8() -> bytes:
    """Readable IPC whose user_name bytes are not UTF-8 (only full validation sees it)."""
    good = encode_frame(_frame(3, 1))
    at = good.index(b"u0u1u2")
    return good[:at] + b"\xff" + good[at + 1:]


def _kinds() -> dict[str, bytes]:
    df = _frame(4, 2)
    nulls = pa.Table.from_pandas(df, schema=FRAME_SCHEMA, preserve_index=False)
    nulls = nulls.set_column(6, "end_ts", pa.array([1, None, 3, 4], pa.int64()))
    text = pa.Table.from_pandas(df.astype({"consumption": str}), preserve_index=False)
    ref = pa.Table.from_pandas(df, schema=FRAME_SCHEMA, preserve_index=False).append_column(
        "ingest_time", pa.array([1_772_409_700_000] * 4, pa.timestamp("ms", tz="UTC")))
    return {"good": encode_frame(df), "good2": encode_frame(_frame(7, 3)),
            "empty": encode_frame(df.iloc[:0]), "nulls": write_ipc(nulls, None),
            "text": write_ipc(text, None), "ref": write_ipc(ref, None),
            "truncated": encode_frame(df)[:-40], "utf8": _bad_utf8()}


def _alone(value: bytes):
    try:
        return decode_frame_with_reference(value)
    except ValueError as exc:
        return str(exc)


def _same(got, want) -> bool:
    if isinstance(want, str) or isinstance(got, str):
        return got == want
    (t1, r1), (t2, r2) = got, want
    return t1.equals(t2) and (r1 is None) == (r2 is None) and \
        (r1 is None or np.array_equal(r1, r2, equal_nan=True))


@pytest.mark.parametrize("seed", range(6))
def test_each_frame_fares_as_alone(seed):
    kinds = _kinds()
    rng = random.Random(seed)
    names = [rng.choice(list(kinds)) for _ in range(12)] + ["good"]
    values = [kinds[n] for n in names]
    got = decode_frames(values)
    for name, value, g in zip(names, values, got, strict=True):
        assert _same(g, _alone(value)), name
    assert not isinstance(got[-1], str)       # a good frame passes, whatever came before
    if "utf8" in names:
        assert isinstance(got[names.index("utf8")], str)   # and the bad one does not


def test_a_fetch_of_good_frames_is_read_whole():
    values = [encode_frame(_frame(500, s)) for s in range(5)]
    got = decode_frames(values)
    assert [t.num_rows for t, _ in got] == [500] * 5
    assert all(_same(g, _alone(v)) for g, v in zip(got, values, strict=True))


@pytest.mark.parametrize("bad", ["utf8", "nulls"])
def test_one_bad_frame_among_good_ones_is_refused_alone(bad):
    kinds = _kinds()
    names = ["good", bad, "good2"]
    got = decode_frames([kinds[n] for n in names])
    assert isinstance(got[1], str) and got[1] == _alone(kinds[bad])
    assert [t.num_rows for t, _ in (got[0], got[2])] == [4, 7]
