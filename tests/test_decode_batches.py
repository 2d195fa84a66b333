"""A message's fate does not depend on its batch (issue 9, defect 7): per-value typing is the
same on the fast and the slow decode path, and rows come out in (partition, offset) order
whatever the mix of CSV, JSON and frames, so dedup keeps the lowest offset."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auth_kappa.topology.decode import Message, decode
from auth_kappa.topology.frames import encode_frame
from auth_kappa.topology.processor import Topology, rows_frame
from auth_kappa.topology.validate import validate
from auth_kappa.topology.windows import WindowSpec

T0 = 1_772_409_600  # 2026-03-02T00:00:00Z
SIDS = [str(uuid.UUID(int=i * 7919 + 1, version=4)) for i in range(3)]


def _obj(sid: str = SIDS[0], end: int = T0 + 5, value: object = 0.25, **over) -> dict:
    return {"service_id": sid, "user_name": "A", "type": "household", "start_ts": end - 5,
            "state": "CA", "consumption": value, "end_ts": end, **over}


def _json(**kw) -> bytes:
    return json.dumps(_obj(**kw)).encode()


def _csv(sid: str = SIDS[0], end: int = T0 + 5, value: object = 0.25) -> bytes:
    return f"{sid},A,household,{end - 5},CA,{value},{end}".encode()


def _frame(rows: list[dict]) -> bytes:
    return encode_frame(pd.DataFrame(rows), compression=None)


def _fate(messages: list[Message]) -> dict[int, str]:
    """offset -> "ok" or the reason it was rejected (decode + validate)."""
    batch, rejects = decode("gas", messages)
    good, _, bad = validate(batch)
    out = {int(o): "ok" for o in good.offset}
    out.update({r.offset: r.reason for r in [*rejects, *bad]})
    return out


# JSON type confusion in a numeric field: every value is decided by itself
CONFUSED = [True, False, None, [0.5], [[1]], {"v": 1}, "1e3", " 0.5 ", "lots", "nan", 1, 0.5,
            10 ** 400, -0.0]


@pytest.mark.parametrize("value", CONFUSED, ids=lambda v: repr(v)[:12])
@pytest.mark.parametrize("field", ["consumption", "end_ts", "start_ts"])
def test_a_value_has_the_same_fate_alone_and_in_any_company(field, value):
    end = T0 + 5
    if field == "consumption":
        odd = _json(value=value)
    else:
        obj = _obj(end=end)
        obj[field] = value
        odd = json.dumps(obj).encode()
    alone = _fate([Message(odd, 0, 0)])[0]
    # with good JSON numbers (the typed fast path), with text (CSV), with a bad value
    for company in ([_json(end=end + 5)], [_csv(end=end + 5)],
                    [_json(end=end + 5, value="lots")], [_json(end=end + 5, value=[1])]):
        got = _fate([Message(odd, 0, 0)] + [Message(v, 0, i + 1) for i, v in enumerate(company)])
        assert got[0] == alone, (company, got)
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        assert alone != "ok"


def test_bools_are_not_numbers():
    assert _fate([Message(_json(value=True), 0, 0), Message(_json(value=0.5), 0, 1)])[0] \
        == "consumption is not a number"
    assert _fate([Message(_json(value=True), 0, 0)])[0] == "consumption is not a number"


def test_rows_come_out_in_offset_order_whatever_the_encoding():
    frame = _frame([_obj(end=T0 + 5, value=9.0), _obj(end=T0 + 10, value=8.0)])
    msgs = [Message(_csv(end=T0 + 5, value=1.0), 0, 0), Message(frame, 0, 1),
            Message(_json(end=T0 + 15, value=2.0), 0, 2), Message(_csv(end=T0 + 20), 1, 0)]
    batch, _ = decode("gas", msgs[::-1])
    assert list(zip(batch.partition.tolist(), batch.offset.tolist(), strict=True)) == \
        [(0, 0), (0, 1), (0, 1), (0, 2), (1, 0)]
    assert batch.end_ts.tolist()[:4] == [T0 + 5, T0 + 5, T0 + 10, T0 + 15]  # frame rows keep order


def test_dedup_keeps_the_lowest_offset_when_a_frame_follows_a_csv_reading():
    topo = _topology()
    frame = _frame([_obj(end=T0 + 5, value=9.0)])
    topo.process("gas", [Message(_csv(end=T0 + 5, value=1.0), 0, 0), Message(frame, 0, 1)])
    meter = _meter_windows(topo)
    assert meter["sum"].tolist() == [1.0]


def _topology() -> Topology:
    topo = Topology((WindowSpec(60, 86400),), grace=10 ** 7)   # nothing late
    topo.assign("gas", [0, 1])
    return topo


def _meter_windows(topo: Topology) -> pd.DataFrame:
    rows = topo.open_windows("gas", "meter", 60)
    return rows_frame("gas", "meter", 60, rows).sort_values(["key", "window_start"]) \
        .reset_index(drop=True)


# a pool of messages: good and bad, CSV / JSON / frames, exact and conflicting resends
def _message(kind: int, meter: int, step: int, value: int) -> bytes:
    sid, end, v = SIDS[meter], T0 + 5 * step, value / 4
    if kind == 0:
        return _csv(sid, end, v)
    if kind == 1:
        return _json(sid=sid, end=end, value=v)
    if kind == 2:
        return _json(sid=sid, end=end, value=bool(value % 2))
    if kind == 3:
        return _csv(sid, end, "x")
    return _frame([_obj(sid=sid, end=end, value=v), _obj(sid=sid, end=end + 5, value=v + 1)])


message = st.tuples(st.integers(0, 4), st.integers(0, 2), st.integers(1, 30), st.integers(0, 3),
                    st.integers(0, 1))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pool=st.lists(message, min_size=1, max_size=60), cuts=st.lists(st.integers(0, 60)))
def test_any_split_into_batches_gives_the_same_result(pool, cuts):
    by_part: dict[int, int] = {}
    msgs = []
    for kind, meter, step, value, _ in pool:
        part = meter % 2     # a meter lives on one partition (producers key by service_id)
        by_part[part] = by_part.get(part, -1) + 1
        msgs.append(Message(_message(kind, meter, step, value), part, by_part[part]))

    def run(batches: list[list[Message]]) -> tuple:
        topo = _topology()
        accepted = duplicates = 0
        reasons = []
        for b in batches:
            r = topo.process("gas", b)
            accepted, duplicates = accepted + r.accepted, duplicates + r.duplicates
            reasons += [(x.partition, x.offset, x.reason) for x in r.rejects]
        return _meter_windows(topo), accepted, duplicates, sorted(reasons)

    whole = run([msgs])
    bounds = sorted({0, len(msgs), *[min(c, len(msgs)) for c in cuts]})
    split = run([msgs[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a])
    # a batch may hold one partition's messages in any position: shuffle within batches too
    rng = np.random.default_rng(len(msgs))
    shuffled = run([[b[i] for i in rng.permutation(len(b))] for b in
                    [msgs[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
                    if b])
    for other in (split, shuffled):
        pd.testing.assert_frame_equal(whole[0], other[0])
        assert whole[1:] == other[1:]


# --- the whole-fetch CSV parser (csv_batch) against the per-message path -----------------

FIELD_POOL = {   # per CSV column: plain values and ones only the per-message path may decide
    0: [SIDS[0], SIDS[1], SIDS[0][:-1], "x" * 36, "é" * 18, ""],
    1: ["A", "Ann Lee", "", "José", "a\tb", 'q"uote', "{x"],
    2: ["household", "business", "House", "", "businessx", "busines"],
    4: ["CA", "NY", "ZZ", "", "C", "CAA", "ca"],
}
TEXT_NUMBERS = ["0.5", "12", "007.250", ".5", "5.", "1.2.3", "", "-1.5", "1e3", "nan", " 1",
                "1_0", "123456789012345", "1234567890123456", "0.000000000000001",
                "99999999999999.9", "+1", "٣", "9" * 15 + ".", ".", "0.1", "2.675",
                "0x1f", "0X1", "1 ", "9007199254740993", "inf"]


def _text_number(draw, odd: bool) -> str:
    if odd:
        return draw(st.sampled_from(TEXT_NUMBERS))
    text = str(draw(st.integers(0, 10 ** draw(st.integers(1, 15)) - 1)))
    point = draw(st.integers(0, len(text)))
    return text if draw(st.booleans()) else text[:point] + "." + text[point:]


@st.composite
def csv_message(draw) -> bytes:
    """Plain, or plain but for one odd part (most often), or odd in several parts."""
    mode, only = draw(st.sampled_from([0, 1, 1, 1, 2])), draw(st.integers(0, 9))

    def odd(part: int) -> bool:
        return (mode == 1 and part == only) or (mode == 2 and draw(st.integers(0, 5)) == 5)

    fields = [(draw(st.sampled_from(FIELD_POOL[i])) if odd(i) else FIELD_POOL[i][0])
              if i in FIELD_POOL else _text_number(draw, odd(i)) for i in range(7)]
    cut = draw(st.sampled_from([6, 8])) if odd(7) else 7
    end = draw(st.sampled_from(["\n", "\r", "\r\n"])) if odd(8) else ""
    value = (",".join((fields + ["x"])[:cut]) + end).encode()
    if odd(9):
        return draw(st.sampled_from([b"", b"{" + value, value[:3] + b"\xff" + value[3:]]))
    return value


def _per_message(messages: list[Message]):
    """The reference: every message through the per-message path alone."""
    import auth_kappa.topology.decode as dec

    parts, rejects = [], []
    for m in messages:
        got, bad = dec._decode_each("gas", [m])
        parts += got
        rejects += bad
    return parts, rejects


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(csv_message(), min_size=10, max_size=40),
       parts=st.lists(st.integers(0, 2), min_size=40, max_size=40))
def test_the_whole_fetch_parser_decides_each_message_as_the_per_message_path(values, parts):
    from auth_kappa.topology.readings import Readings

    msgs = [Message(v, parts[i], i, None if i % 3 else T0 + 0.5) for i, v in enumerate(values)]
    batch, rejects = decode("gas", msgs)
    ref_parts, ref_rejects = _per_message(msgs)
    ref = Readings.concat("gas", ref_parts)
    ref = ref.take(np.lexsort((ref.offset, ref.partition)))
    pd.testing.assert_frame_equal(batch.to_pandas(), ref.to_pandas())
    assert batch.consumption.tobytes() == ref.consumption.tobytes()   # bit for bit
    assert batch.ref_ts.tobytes() == ref.ref_ts.tobytes()
    assert list(batch.raw) == list(ref.raw)
    key = sorted((r.partition, r.offset, r.reason, r.raw) for r in ref_rejects)
    assert [(r.partition, r.offset, r.reason, r.raw) for r in rejects] == key


def test_plain_csv_is_parsed_for_the_whole_fetch_with_float_exact_values():
    from auth_kappa.topology import csv_batch

    rng = np.random.default_rng(5)
    texts = [f"{rng.integers(0, 10 ** 6)}.{rng.integers(0, 10 ** 6):06d}" for _ in range(500)]
    texts += ["0.1", "2.675", "5.", ".5", "999999999999999", "0.00000000000001"]
    values = [_csv(SIDS[i % 3], T0 + 5 * i, t) for i, t in enumerate(texts)]
    taken, parsed = csv_batch.parse(values, 4096)
    assert taken.all()
    assert parsed.consumption.tolist() == [float(t) for t in texts]
    assert parsed.end_ts.tolist() == [T0 + 5 * i for i in range(len(texts))]
    assert parsed.user_name.to_pylist() == ["A"] * len(texts)
    assert parsed.state_code.tolist() == [4] * len(texts)      # CA
    assert parsed.service_id.tolist() == [SIDS[i % 3].encode() for i in range(len(texts))]


# what Arrow's CSV reader types, but not as the per-message path would (csv_batch's guards)
ARROW_TYPES_THESE = {3: [" 1772409600", "0x1f", "9007199254740993", "-5", "007", "1772409600"],
                     5: ["1 ", " 0.5", "nan", "inf", "-inf", "1e3", "+.5", "1e400", "0.25"],
                     6: ["1772409605 ", "0X1F", "-9007199254740993", "1772409605"]}


def test_values_arrow_types_that_the_per_message_path_refuses_go_to_it(monkeypatch):
    """Every value here is one Arrow's reader types, so the fetch stays on the Arrow path
    (the numpy fallback would fail the test); each message's fate must still be the one
    it has alone on the per-message path."""
    from auth_kappa.topology import csv_batch
    from auth_kappa.topology.readings import Readings

    def no_fallback(*args):
        raise AssertionError("the fetch left the Arrow path")

    monkeypatch.setattr(csv_batch, "_by_numpy", no_fallback)
    values = []
    for field, texts in ARROW_TYPES_THESE.items():
        for text in texts:
            parts = _csv(SIDS[len(values) % 3], T0 + 5 * len(values)).decode().split(",")
            parts[field] = text
            values.append(",".join(parts).encode())
    msgs = [Message(v, 0, i) for i, v in enumerate(values)]
    taken, _ = csv_batch.parse(values, 4096)
    assert 0 < taken.sum() < len(values)     # some taken, the odd ones left to the path
    batch, rejects = decode("gas", msgs)
    ref_parts, ref_rejects = _per_message(msgs)
    ref = Readings.concat("gas", ref_parts)
    pd.testing.assert_frame_equal(batch.to_pandas(), ref.to_pandas())
    assert batch.consumption.tobytes() == ref.consumption.tobytes()
    assert sorted((r.offset, r.reason) for r in rejects) == \
        sorted((r.offset, r.reason) for r in ref_rejects)
