"""Every kind of bad input is quarantined with its reason; nothing stops the engine."""

from __future__ import annotations

import json
import time

import pytest

from auth_kappa import Engine
from tests.support.live import LiveCase

SID = "0b9d3e3c-1f2a-4c1e-9a7b-1234567890ab"
NOW = 1_772_409_600  # 2026-03-02T00:00:00Z


def good(end: int = NOW + 5, value: str = "0.25") -> bytes:
    return f"{SID},Ada Lovelace,household,{end - 5},CA,{value},{end}".encode()


BAD: dict[str, tuple[bytes, str]] = {
    "bad csv": (b"only,three,fields", "CSV has 3 fields"),
    "wrong type": (good(value="lots"), "consumption is not a number"),
    "wrong ts type": (f"{SID},A,household,yesterday,CA,0.1,{NOW}".encode(), "start_ts"),
    "nan": (good(value="nan"), "consumption is not finite"),
    "negative": (good(value="-0.5"), "consumption is negative"),
    "far future": (good(end=4_102_444_800), "future"),
    "ancient": (good(end=86_400), "ancient"),
    "unknown utility": (json.dumps({"service_id": SID, "user_name": "A", "type": "household",
                                    "start_ts": NOW, "state": "CA", "consumption": 0.1,
                                    "end_ts": NOW + 5, "utility": "steam"}).encode(),
                        "unknown utility"),
    "unknown state": (f"{SID},A,household,{NOW},ZZ,0.1,{NOW + 5}".encode(), "unknown state"),
    "not a uuid": (f"meter-1,A,household,{NOW},CA,0.1,{NOW + 5}".encode(), "not a lower-case uuid"),
    "1 MB payload": (b"x" * 1_000_000, "exceeds"),
    "invalid utf-8": (b"\xff\xfe" + good()[2:], "invalid UTF-8"),
    "garbage frame": (b"\xff\xff\xff\xff" + b"\x00" * 64, "frame"),
}


def test_embedded_quarantines_each_kind_with_its_reason(tmp_path):
    eng = Engine.embedded(window="1m", out_dir=tmp_path)
    lines = [good(NOW + 5 * i) for i in range(1, 4)]
    for raw, _ in BAD.values():
        lines.insert(2, raw)
    eng.ingest(lines, utility="gas")
    eng.flush()
    q = eng.quarantine()
    assert eng.stats.accepted == 3 and eng.stats.quarantined == len(BAD)
    got = dict(zip(q["raw"], q["reason"], strict=True))
    for name, (raw, reason) in BAD.items():
        assert reason in got[raw], name
    written = (tmp_path / "quarantine.jsonl").read_text().splitlines()
    assert len(written) == len(BAD) and all(json.loads(x)["reason"] for x in written)
    assert eng.windows(level="state", utility="gas")["count"].sum() == 3


def test_unknown_utility_in_a_record_is_quarantined_not_raised():
    eng = Engine.embedded()
    eng.ingest([{"utility": "steam", "service_id": SID}])
    assert eng.stats.quarantined == 1 and "unknown utility" in eng.quarantine()["reason"][0]


@pytest.mark.stack
@pytest.mark.slow
def test_live_worker_quarantines_everything_and_keeps_running(stack, tmp_path, unique):
    from tests.support.kafka import producer as ordered_producer

    case = LiveCase(f"bad{unique}", tmp_path)
    case.create_topics()
    try:
        producer = ordered_producer(stack.kafka, **{"message.max.bytes": 2_000_000})
        sent = [good(NOW + 5 * i) for i in range(1, 4)]
        for raw, _ in BAD.values():
            producer.produce(f"{case.name}-water", raw, key=SID.encode())
        for raw in sent:
            producer.produce(f"{case.name}-water", raw, key=SID.encode())
        assert producer.flush(30) == 0
        case.start_worker()
        case.wait_until({"electricity": 0, "gas": 0, "water": len(BAD) + len(sent)})
        time.sleep(1.0)
        q = case.read_topic("quarantine")
        reasons = {r.value: dict(r.headers)["reason"].decode() for r in q}
        assert len(q) == len(BAD)
        for name, (raw, reason) in BAD.items():
            kept = raw[:64 * 1024]  # an oversized payload is kept truncated, with its size
            assert reason in reasons[kept], name
        big = [r for r in q if dict(r.headers).get("truncated_from") == b"1000000"]
        assert len(big) == 1
        assert case.state_totals()["water"][0] == len(sent)
        assert case.workers[0].poll() is None
    finally:
        case.cleanup()
