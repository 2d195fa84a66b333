"""Brute-force truth over what the source topics really hold, independent of the engine.

It reads every record back with a plain consumer and recomputes, in pure Python, what
the windows must be under the documented semantics. It never imports auth_kappa.topology
or auth_kappa.state: a bug shared by the engine and its reference would go unseen.

Semantics (issue 9):
- validation mirrors auth_kappa/topology/validate.py's list of rules; end_ts may be at
  most 15 min after the record's timestamp (else reason `future`);
- event time is per partition: in (offset, row in frame) order, `high` is the largest
  end_ts of the valid readings seen so far; a valid reading is late iff
  floor(end/60)*60 + 60 + grace <= high before it; late readings count in no window;
- the first on-time (service_id, utility, end_ts) counts; a later one with the same
  consumption is a duplicate, with another consumption a conflicting duplicate;
- tumbling windows of 60 s and 3600 s per meter and per state: sum, count, min, max.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.ipc as ipc

FIELDS = ("service_id", "user_name", "type", "start_ts", "state", "consumption", "end_ts")
UTILITIES = ("electricity", "gas", "water")
TYPES = ("household", "business")
STATES = frozenset(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV "
    "NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY".split())
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
MIN_TS = 946684800          # 2000-01-01T00:00:00Z
MAX_FUTURE = 900            # 15 min ahead of the record timestamp
MAX_READING_BYTES = 4096
MAX_FRAME_BYTES = 16 * 1024 * 1024
SIZES = (60, 3600)
ARROW_MAGIC = b"\xff\xff\xff\xff"
DECIMAL_TEXT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?"
                          r"|[+-]?(nan|inf|infinity)", re.IGNORECASE)
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Record:
    """One Kafka record as the source topic holds it (timestamp in seconds)."""

    utility: str
    partition: int
    offset: int
    timestamp: float
    value: bytes
    headers: dict[str, bytes] = field(default_factory=dict)


Reading = tuple[str, str, str, int, str, float, int]


def parse(value: bytes, utility: str) -> list[tuple[Reading | None, str | None]]:
    """Rows of one message: (reading, None) or (None, why it is not a reading)."""
    if not value:
        return [(None, "empty")]
    if value[:4] == ARROW_MAGIC:
        return _frame_rows(value)
    if len(value) > MAX_READING_BYTES:
        return [(None, "oversized")]
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return [(None, "invalid UTF-8")]
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError):
            return [(None, "invalid JSON")]
        if not isinstance(obj, dict) or obj.get("utility", utility) != utility:
            return [(None, "JSON shape")]
        if any(f not in obj for f in FIELDS):
            return [(None, "JSON lacks fields")]
        raw = [obj[f] for f in FIELDS]
        if not all(isinstance(raw[i], str) for i in (0, 1, 2, 4)):
            return [(None, "JSON non-text")]
    else:
        raw = text.rstrip("\r\n").split(",")
        if len(raw) != 7:
            return [(None, "field count")]
    return [_typed(raw)]


def _number(v: object) -> float | None:
    """Text must be plain decimal (or nan/inf): not float()'s 1_000, ' 1' or non-ASCII digits."""
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        return None
    if isinstance(v, str) and not DECIMAL_TEXT.fullmatch(v):
        return None
    try:
        return float(v)
    except (ValueError, OverflowError):
        return None


def _integer(v: object) -> int | None:
    x = _number(v)
    if x is None or not math.isfinite(x) or x != math.floor(x) or abs(x) >= 2**53:
        return None
    return int(x)


def _typed(raw: list) -> tuple[Reading | None, str | None]:
    start, end, cons = _integer(raw[3]), _integer(raw[6]), _number(raw[5])
    if start is None or end is None or cons is None:
        return None, "not a number"
    return (raw[0], raw[1], raw[2], start, raw[4], cons, end), None


def _frame_rows(value: bytes) -> list[tuple[Reading | None, str | None]]:
    if len(value) > MAX_FRAME_BYTES:
        return [(None, "oversized frame")]
    try:
        table = ipc.open_stream(pa.py_buffer(value)).read_all()
        table.validate(full=True)   # corrupt offsets must not reach to_pylist
        table = table.select(list(FIELDS))
        rows = table.to_pylist()
    except Exception:  # noqa: BLE001 - whatever a corrupt frame raises, it is not readings
        return [(None, "bad frame")]
    if not rows:
        return [(None, "frame has no readings")]
    if any(r["start_ts"] is None or r["end_ts"] is None for r in rows):
        return [(None, "null timestamps")]
    out: list[tuple[Reading | None, str | None]] = []
    for r in rows:
        raw = [r[f] for f in FIELDS]
        raw[0], raw[1], raw[2], raw[4] = (raw[i] if isinstance(raw[i], str) else ""
                                          for i in (0, 1, 2, 4))
        if raw[5] is None:
            raw[5] = float("nan")
        out.append(_typed(raw))
    return out


def invalid_reason(r: Reading, record_ts: float) -> str | None:
    """validate.py's rules, in its order; None for a valid reading."""
    sid, name, mtype, start, state, cons, end = r
    if not UUID.match(sid):
        return "service_id"
    if LONE_SURROGATE.search(name):
        return "user_name is not valid text"
    if mtype not in TYPES:
        return "type"
    if state not in STATES:
        return "state"
    if not math.isfinite(cons):
        return "not finite"
    if cons < 0:
        return "negative"
    if cons > 1e6:
        return "too large"
    if end <= start:
        return "end before start"
    if end - start > 3600:
        return "interval"
    if start < MIN_TS:
        return "ancient"
    if end > record_ts + MAX_FUTURE:
        return "future"
    return None


Window = list  # [sum, count, min, max]


@dataclass
class Truth:
    """What the engine must have produced from these records."""

    # (level, utility, size) -> {(key, window_start): [sum, count, min, max]}
    windows: dict[tuple[str, str, int], dict[tuple[str, int], Window]] = field(
        default_factory=lambda: defaultdict(dict))
    late: set[tuple[str, int, int, str, int]] = field(default_factory=set)
    quarantined: set[str] = field(default_factory=set)   # utility:partition:offset
    conflicts: set[str] = field(default_factory=set)
    highs: dict[tuple[str, int], int] = field(default_factory=dict)
    counted: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    duplicates: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # the simulator's own traffic (records without a `chaos` header): distinct valid readings
    sim_valid: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    sim_sum: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    meters: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))


def compute(records: list[Record], grace: float = 30.0) -> Truth:
    """Apply the semantics to every record, partition by partition in offset order."""
    t = Truth()
    first: dict[tuple[str, str, int], float] = {}
    sim_seen: set[tuple[str, str, int]] = set()
    for rec in sorted(records, key=lambda r: (r.utility, r.partition, r.offset)):
        u, where = rec.utility, (rec.utility, rec.partition)
        source = f"{u}:{rec.partition}:{rec.offset}"
        for reading, _why in parse(rec.value, u):
            if reading is None or invalid_reason(reading, rec.timestamp):
                t.quarantined.add(source)
                continue
            sid, _, _, _, state, cons, end = reading
            if "chaos" not in rec.headers and (sid, u, end) not in sim_seen:
                sim_seen.add((sid, u, end))
                t.sim_valid[u] += 1
                t.sim_sum[u] += cons
            high = t.highs.get(where, -math.inf)
            t.highs[where] = max(high, end)
            if end // 60 * 60 + 60 + grace <= high:
                t.late.add((u, rec.partition, rec.offset, sid, end))
                continue
            key = (sid, u, end)
            if key in first:
                if first[key] == cons:
                    t.duplicates[u] += 1
                else:
                    t.conflicts.add(source)
                    t.quarantined.add(source)
                continue
            first[key] = cons
            t.counted[u] += 1
            t.meters[u].add(sid)
            for size in SIZES:
                ws = end // size * size
                _add(t.windows[("meter", u, size)], (sid, ws), cons)
                _add(t.windows[("state", u, size)], (state, ws), cons)
    return t


def _add(table: dict[tuple[str, int], Window], key: tuple[str, int], v: float) -> None:
    w = table.get(key)
    if w is None:
        table[key] = [v, 1, v, v]
    else:
        w[0] += v
        w[1] += 1
        w[2] = min(w[2], v)
        w[3] = max(w[3], v)


def late_key(rec: Record) -> tuple[str, int, int, str, int] | None:
    """A `late` topic record as (utility, partition, offset, service_id, end_ts)."""
    src = rec.headers.get("source", b"").decode(errors="replace").split(":")
    if len(src) != 3:
        return None
    rows = parse(rec.value, src[0])
    if len(rows) != 1 or rows[0][0] is None:
        return None
    reading = rows[0][0]
    return src[0], int(src[1]), int(src[2]), reading[0], reading[6]


def read_topics(bootstrap: str, topics: dict[str, str], timeout: float = 60.0
                ) -> list[Record]:
    """Every record of each topic ({label: topic name}) up to its end, with a plain consumer."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "chaos-truth",
                  "enable.auto.commit": False, "fetch.max.bytes": 64 << 20,
                  "max.partition.fetch.bytes": 32 << 20})
    out: list[Record] = []
    try:
        ends: dict[tuple[str, int], int] = {}
        assign = []
        meta = c.list_topics(timeout=30).topics
        for name in topics.values():
            if name not in meta:
                continue
            for p in meta[name].partitions:
                lo, hi = c.get_watermark_offsets(TopicPartition(name, p), timeout=30)
                if hi > lo:
                    ends[(name, p)] = hi
                    assign.append(TopicPartition(name, p, lo))
        if not assign:
            return out
        c.assign(assign)
        labels = {name: label for label, name in topics.items()}
        import time

        deadline = time.monotonic() + timeout
        while ends and time.monotonic() < deadline:
            for m in c.consume(10000, 1.0):
                if m.error():
                    continue
                key = (m.topic(), m.partition())
                out.append(Record(labels[m.topic()], m.partition(), m.offset(),
                                  m.timestamp()[1] / 1000.0, m.value() or b"",
                                  {k: v or b"" for k, v in (m.headers() or [])}))
                if key in ends and m.offset() + 1 >= ends[key]:
                    del ends[key]
        if ends:
            raise TimeoutError(f"could not read to the end of {sorted(ends)}")
    finally:
        c.close()
    return out
