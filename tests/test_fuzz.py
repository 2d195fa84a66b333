"""Hostile input (issue 9 chaos suite): fuzzed messages mixed into valid traffic.

No crash, every hostile message quarantined with the reason its kind fixes, and the
valid traffic's windows exactly what they are without the hostile messages. The
generator is tests/chaos/fuzz.py; each defect it found has a test below with its exact
input (fuzz.KNOWN_DEFECTS lists variants still left out of the mixes: none today).
"""

from __future__ import annotations

import json
import random
import re
import struct
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from auth_kappa.topology.decode import Message
from auth_kappa.topology.processor import Topology, rows_frame
from auth_kappa.topology.windows import WindowSpec
from tests.chaos import fuzz
from tests.chaos.fuzz import Hostile

ROOT = Path(__file__).resolve().parents[1]
UTILS = ("electricity", "gas", "water")
SIZES = (60, 3600)
LEVELS = ("meter", "state")
VALUES = ["sum", "count", "min", "max"]
SID = "0b9d3e3c-1f2a-4c1e-9a7b-1234567890ab"


# --- shared -----------------------------------------------------------------------------

def simulate(out: Path, *args: str) -> Path:
    """The simulator's files (a fleet of its own, not the engine's code)."""
    run = subprocess.run([sys.executable, "-m", "auth_kappa.cli.main", "simulate", "--to",
                          "files", "--out", str(out), "--quiet", *args],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    return out


def mismatches(expect: list[tuple[str, ...]], got: list[list[str]]) -> dict[int, str]:
    """Per message: its quarantine reasons must be as many as expected, each matching."""
    bad = {}
    for i, (want, reasons) in enumerate(zip(expect, got, strict=True)):
        left = list(reasons)
        for pattern in want:
            hit = next((r for r in left if re.search(pattern, r)), None)
            if hit is None:
                bad[i] = f"no reason matching {pattern!r} in {reasons[:5]}"
                break
            left.remove(hit)
        else:
            if left:
                bad[i] = f"unexpected reasons {left[:5]} besides {want[:5]}"
    return bad


# --- (a) in-process: 100,000 hostile messages ------------------------------------------

def _topology() -> Topology:
    topo = Topology([WindowSpec.parse("1m"), WindowSpec.parse("1h")], grace=30.0,
                    idle_timeout=float("inf"))
    for u in UTILS:
        topo.assign(u, [0])
    return topo


def _frames(path: Path, rows: int = 100) -> list[bytes]:
    table = pq.read_table(path).select(list(fuzz.FIELDS)).cast(fuzz.SCHEMA)
    return [fuzz.ipc_bytes(table.slice(i, rows)) for i in range(0, table.num_rows, rows)]


def _valid_traffic(tmp: Path) -> dict[str, list[bytes]]:
    """electricity as CSV lines, gas as JSON lines, water as 100-row frames."""
    common = ("--meters", "150", "--duration", "10m", "--duplicate-fraction", "0.01",
              "--late-fraction", "0.01", "--late-delay", "2m")
    csv = simulate(tmp / "csv", *common, "--seed", "31")
    js = simulate(tmp / "json", *common, "--seed", "32", "--format", "json")
    pa_ = simulate(tmp / "parquet", *common, "--seed", "33", "--format", "parquet")
    lines = {"electricity": (csv / "electricity.csv").read_bytes().split(b"\n"),
             "gas": (js / "gas.jsonl").read_bytes().split(b"\n")}
    out = {u: [x for x in v if x] for u, v in lines.items()}
    out["water"] = _frames(pa_ / "water.parquet")
    return out


class Run:
    """One topology fed batch by batch; keeps every final window and every rejection."""

    def __init__(self) -> None:
        self.topo = _topology()
        self.final: dict[tuple, list[pd.DataFrame]] = defaultdict(list)
        self.rejects: dict[tuple[str, int], list[str]] = defaultdict(list)
        self.late: set[tuple[str, int]] = set()
        self.accepted = self.duplicates = 0

    def feed(self, utility: str, msgs: list[Message]) -> None:
        r = self.topo.process(utility, msgs)
        self._keep(r.final)
        for x in r.rejects:
            self.rejects[(utility, x.offset)].append(x.reason)
        self.late.update((utility, int(o)) for o in r.late.offset)
        self.accepted += r.accepted
        self.duplicates += r.duplicates

    def finish(self) -> dict[tuple, pd.DataFrame]:
        self._keep(self.topo.end_of_input())
        return {slot: pd.concat(parts, ignore_index=True).sort_values(["key", "window_start"])
                .reset_index(drop=True) for slot, parts in self.final.items()}

    def _keep(self, final: dict) -> None:
        for slot, rows in final.items():
            if len(rows):
                self.final[slot].append(rows_frame(*slot, rows))


def _mixed_runs(valid: dict[str, list[bytes]], bad: dict[str, list[Hostile]], now: float,
                batch: int = 2000) -> tuple[Run, Run, dict[str, dict[int, Hostile]]]:
    """The mixed stream and the valid-only stream, cut at the same places (lateness
    depends on batch boundaries) and with the same offsets."""
    mixed, alone, where = Run(), Run(), {}
    rng = random.Random(9)
    for u in UTILS:
        n = len(valid[u]) + len(bad[u])
        spots = set(rng.sample(range(n), len(bad[u])))
        good, hostile = iter(valid[u]), iter(bad[u])
        stream = [(None, next(hostile)) if i in spots else (next(good), None) for i in range(n)]
        where[u] = {i: h for i, (_, h) in enumerate(stream) if h is not None}
        for lo in range(0, n, batch):
            part = [(i, v, h) for i, (v, h) in enumerate(stream[lo:lo + batch], lo)]
            mixed.feed(u, [Message(h.value if h else v, 0, i, now) for i, v, h in part])
            alone.feed(u, [Message(v, 0, i, now) for i, v, h in part if h is None])
    return mixed, alone, where


def test_100k_hostile_messages_in_process_are_quarantined_and_change_nothing(tmp_path):
    t0 = time.monotonic()
    now = time.time()
    valid = _valid_traffic(tmp_path)
    sizes = {"electricity": 33_334, "gas": 33_333, "water": 33_333}
    bad = {u: fuzz.safe(sizes[u], seed=7, utility=u, now=now) for u in UTILS}
    t1 = time.monotonic()
    mixed, alone, where = _mixed_runs(valid, bad, now)
    got, want = mixed.finish(), alone.finish()
    t2 = time.monotonic()

    # every hostile message: quarantined, as often as it should be, each with its reason
    failures: list[str] = []
    by_kind, ok_kind = Counter(), Counter()
    for u in UTILS:
        hs = list(where[u].items())
        failed = mismatches([h.expect for _, h in hs],
                            [mixed.rejects.get((u, i), []) for i, _ in hs])
        for j, (_, h) in enumerate(hs):
            by_kind[h.kind] += 1
            ok_kind[h.kind] += j not in failed
        failures += [f"{u} {hs[j][1].kind}/{hs[j][1].variant}: {why}; value "
                     f"{(hs[j][1].value or b'')[:120]!r}" for j, why in failed.items()]
    print(f"\nhostile by kind (quarantined as expected / sent): "
          f"{ {k: (ok_kind[k], n) for k, n in sorted(by_kind.items())} }")
    print(f"generate {t1 - t0:.1f}s, two runs {t2 - t1:.1f}s")
    assert not failures, f"{len(failures)} hostile messages mishandled:\n" + \
        "\n".join(failures[:20])
    assert sum(by_kind.values()) == 100_000 and set(by_kind) == set(fuzz.KINDS)

    # nothing valid was quarantined, and the valid traffic is exactly as without them
    hostile_at = {(u, i) for u in UTILS for i in where[u]}
    assert {k: v for k, v in mixed.rejects.items() if k not in hostile_at} == alone.rejects
    assert mixed.late == alone.late and len(alone.late) > 0
    assert (mixed.accepted, mixed.duplicates) == (alone.accepted, alone.duplicates)
    assert alone.duplicates > 0
    assert set(got) == set(want) == {(u, lv, s) for u in UTILS for lv in LEVELS for s in SIZES}
    for slot in want:
        pd.testing.assert_frame_equal(got[slot], want[slot], check_exact=True, obj=str(slot))


def test_archiver_quarantines_the_same_hostile_messages():
    """Every worker also archives what it reads: the archive must reject the same
    messages with the same reasons, and archive none of them (replay reads it back)."""
    import numpy as np

    from auth_kappa.archive.records import split_messages

    now = time.time()
    hs = fuzz.safe(6000, seed=5, utility="water", now=now, max_bytes=200_000)
    got: dict[int, list[str]] = defaultdict(list)
    for lo in range(0, len(hs), 500):
        msgs = [Message(h.value, 0, i) for i, h in enumerate(hs[lo:lo + 500], lo)]
        archive, quarantine = split_messages("water", "water", msgs,
                                             np.full(len(msgs), int(now * 1000)))
        assert archive.num_rows == 0
        for off, reason in zip(quarantine["offset"].to_pylist(),
                               quarantine["reason"].to_pylist(), strict=True):
            got[off].append(reason)
    failures = mismatches([h.expect for h in hs], [got[i] for i in range(len(hs))])
    assert not failures, [(hs[i].kind, hs[i].variant, why) for i, why in
                          list(failures.items())[:10]]


# --- (b) live: a real producer, a real faust worker -------------------------------------

def _produce(topic_prefix: str, kafka: str, bad: dict[str, list[Hostile]]
             ) -> dict[str, Hostile]:
    """Produces every hostile message; returns them by their `source` (utility:p:offset)."""
    from tests.support.kafka import producer as ordered_producer

    sources: dict[str, Hostile] = {}
    errors: list[str] = []
    producer = ordered_producer(kafka, **{"message.max.bytes": 2_000_000, "linger.ms": 20})

    def done(u: str, h: Hostile):
        def cb(err, msg) -> None:
            if err is not None:
                errors.append(str(err))
            else:
                sources[f"{u}:{msg.partition()}:{msg.offset()}"] = h
        return cb

    for u, hs in bad.items():
        for h in hs:
            producer.produce(f"{topic_prefix}{u}", h.value, key=h.key, on_delivery=done(u, h))
            producer.poll(0)
    assert producer.flush(60) == 0 and not errors, errors[:5]
    return sources


def _brute_force_states(csv_dir: Path, utility: str, size: int) -> pd.DataFrame:
    """Per-state windows from the simulator's CSV, first reading per (meter, end) only."""
    seen, acc = set(), {}
    for line in (csv_dir / f"{utility}.csv").read_bytes().split(b"\n"):
        parts = line.split(b",")
        if len(parts) != 7:
            continue
        sid, state, value, end = parts[0], parts[4].decode(), float(parts[5]), int(parts[6])
        if (sid, end) in seen:
            continue
        seen.add((sid, end))
        k = (state, end // size * size)
        s, c, lo, hi = acc.get(k, (0.0, 0, value, value))
        acc[k] = (s + value, c + 1, min(lo, value), max(hi, value))
    return pd.DataFrame([(k[0], k[1], *v) for k, v in acc.items()],
                        columns=["key", "window_start", *VALUES])


@pytest.mark.stack
@pytest.mark.slow
def test_live_worker_quarantines_5000_hostile_messages_and_stays_exact(stack, tmp_path, unique):
    from tests.support.live import LiveCase, brute_force_meter_windows

    case = LiveCase(f"fz{unique}", tmp_path)
    case.create_topics()
    try:
        args = ("--meters", "60", "--duration", "10m", "--seed", "17",
                "--duplicate-fraction", "0.01")
        now = time.time()
        bad = {u: fuzz.safe(n, seed=11, utility=u, now=now, max_bytes=900_000)
               for u, n in zip(UTILS, (1667, 1667, 1666), strict=True)}
        case.start_worker()     # consumes while both producers run: interleaved, full rate
        sources: dict[str, Hostile] = {}
        hostile = threading.Thread(
            target=lambda: sources.update(_produce(f"{case.name}-", stack.kafka, bad)))
        hostile.start()
        manifest = case.simulate(*args)
        hostile.join(timeout=120)
        assert len(sources) == sum(map(len, bad.values()))
        case.simulate(*args, to="files")
        case.wait_until({u: manifest["utilities"][u]["messages"] + len(bad[u]) for u in UTILS})
        time.sleep(1.5)   # side outputs leave right after the checkpoint
        assert case.workers[0].poll() is None, case.log_tail()

        # one quarantine record per expected rejection (at-least-once: dedupe)
        seen: dict[str, list[str]] = defaultdict(list)
        for rec in {(dict(r.headers)["source"].decode(), r.value,
                     dict(r.headers)["reason"].decode()) for r in case.read_topic("quarantine")}:
            seen[rec[0]].append(rec[2])
        assert set(seen) <= set(sources), sorted(set(seen) - set(sources))[:10]
        order = sorted(sources)
        failures = mismatches([sources[s].expect for s in order], [seen.get(s, []) for s in order])
        assert not failures, "\n".join(f"{order[j]}: {sources[order[j]].kind}/"
                                        f"{sources[order[j]].variant}: {why}"
                                        for j, why in list(failures.items())[:20])

        # the valid traffic's windows are the brute force over the simulator's files
        store, files = case.store(), case.workdir / "sim-files"
        for u in UTILS:
            for size in SIZES:
                got = store.read_windows("state", u, size)[["key", "window_start", *VALUES]]
                ref = _brute_force_states(files, u, size)
                merged = ref.merge(got, on=["key", "window_start"], how="outer",
                                   suffixes=("", "_got"), indicator=True)
                missing = merged[merged["_merge"] != "both"]
                assert missing.empty, (u, size, missing)
                assert (merged["count"] == merged["count_got"]).all(), (u, size)
                assert (merged["min"] == merged["min_got"]).all() and \
                    (merged["max"] == merged["max_got"]).all(), (u, size)
                assert merged["sum_got"].tolist() == pytest.approx(merged["sum"].tolist(), rel=1e-9)
            ref = brute_force_meter_windows(files, u, 60)
            for sid in sorted(set(ref["key"])):      # every meter (60 a utility)
                got = store.read_windows("meter", u, 60, sid).sort_values("window_start")
                mine = ref[ref["key"] == sid].sort_values("window_start")
                assert got["count"].tolist() == mine["count"].tolist(), (u, sid)
                assert got["sum"].tolist() == pytest.approx(mine["sum"].tolist(), rel=1e-9)
        assert case.workers[0].poll() is None
    finally:
        case.cleanup()


# --- defects found by the fuzzer, with their exact inputs ---------------------------------

def _row(**over: object) -> dict[str, object]:
    rec = {"service_id": SID, "user_name": "Fuzz 899911", "type": "household",
           "start_ts": 1772409600, "state": "CA", "consumption": 0.25, "end_ts": 1772409605}
    rec.update(over)
    return rec


def _quarantined_alone(value: bytes, records: int = 1) -> list[str]:
    """Processes one message; it must be rejected (records times), not accepted."""
    r = _topology().process("gas", [Message(value, 0, 0, 1772409700.0)])
    assert r.accepted == 0
    assert len(r.rejects) == records and all(x.reason for x in r.rejects)
    return [x.reason for x in r.rejects]


def _in_child(code: str) -> subprocess.CompletedProcess:
    """Inputs that may segfault run in a child, so the suite survives them."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def _one_row_frame() -> bytes:
    return fuzz.frame([_row(service_id="not-a-uuid", type="factory", state="ZZ",
                            consumption=-1.0, start_ts=1, end_ts=6)])


def test_frame_with_a_flipped_offset_bit_is_quarantined_not_a_segfault():
    """user_name's offsets [0, 11] become [0, 11 + 2**24]: one flipped bit."""
    base = _one_row_frame()
    at = base.rindex(struct.pack("<ii", 0, 11)) + 7    # body: high byte of the end offset
    flipped = base[:at] + bytes([base[at] ^ 1]) + base[at + 1:]
    run = _in_child(f"""
        from tests.test_fuzz import _quarantined_alone
        print(_quarantined_alone({flipped!r}))
    """)
    assert run.returncode == 0, f"exit {run.returncode}: {run.stderr[-500:]}"
    assert "frame" in run.stdout


def test_every_single_bit_flip_of_a_frame_is_quarantined():
    run = _in_child("""
        from tests.test_fuzz import _one_row_frame, _topology
        from auth_kappa.topology.decode import Message
        base, topo, bad = _one_row_frame(), _topology(), []
        for k in range(32, len(base) * 8):
            b = bytearray(base)
            b[k // 8] ^= 1 << (k % 8)
            try:
                r = topo.process("gas", [Message(bytes(b), 0, k, 1772409700.0)])
                if r.accepted or len(r.rejects) != 1:
                    bad.append((k // 8, k % 8, "accepted" if r.accepted else len(r.rejects)))
            except Exception as exc:
                bad.append((k // 8, k % 8, type(exc).__name__))
        print(len(bad), bad[:10])
    """)
    assert run.returncode == 0, f"exit {run.returncode}: {run.stderr[-300:]}"
    assert run.stdout.startswith("0 "), run.stdout


def test_frame_with_a_duplicate_column_is_quarantined():
    import pyarrow as pa

    table = pa.table({f: [v] for f, v in _row().items()}, schema=fuzz.SCHEMA)
    table = table.append_column(pa.field("service_id", pa.string()), [[SID]])
    _quarantined_alone(fuzz.ipc_bytes(table))


@pytest.mark.parametrize("encoding", ["csv", "json"])
def test_non_ascii_service_id_in_a_reading_is_quarantined(encoding):
    rec = _row(service_id="é" * 36)
    value = fuzz.csv(rec) if encoding == "csv" else json.dumps(rec).encode()
    assert "uuid" in _quarantined_alone(value)[0]


def test_non_ascii_service_id_in_a_frame_is_quarantined():
    assert "uuid" in _quarantined_alone(fuzz.frame([_row(service_id="é" * 36)]))[0]


def test_deeply_nested_json_is_quarantined():
    value = b'{"a":' + b"[" * 1500 + b"]" * 1500 + b"}"
    assert "invalid JSON" in _quarantined_alone(value)[0]


@pytest.mark.parametrize("field", ["state", "type", "service_id"])
def test_lone_surrogate_escape_in_a_json_text_field_is_quarantined(field):
    value = json.dumps(_row(**{field: "\ud800" * (36 if field == "service_id" else 1)}))
    assert value.encode().isascii()
    _quarantined_alone(value.encode())


def test_stream_and_archive_agree_on_a_lone_surrogate_user_name():
    import numpy as np

    from auth_kappa.archive.records import split_messages

    value = json.dumps(_row(user_name="A\ud800")).encode()
    r = _topology().process("gas", [Message(value, 0, 0, 1772409700.0)])
    archive, quarantine = split_messages("gas", "gas", [Message(value, 0, 0)],
                                         np.array([1772409700000]))
    assert (archive.num_rows, quarantine.num_rows) == (r.accepted, len(r.rejects))


def test_a_frame_of_invalid_rows_costs_about_what_a_valid_frame_costs():
    import pyarrow as pa

    n = 5000
    rows = {f: [v] * n for f, v in _row().items()}
    rows["service_id"] = [f"{i:08x}-1f2a-4c1e-9a7b-1234567890ab" for i in range(n)]
    good = fuzz.ipc_bytes(pa.table(rows, schema=fuzz.SCHEMA))
    bad = fuzz.ipc_bytes(pa.table({**rows, "consumption": [-1.0] * n}, schema=fuzz.SCHEMA))
    took = []
    for value in (good, bad):
        t0 = time.perf_counter()
        _topology().process("gas", [Message(value, 0, 0, 1772409700.0)])
        took.append(time.perf_counter() - t0)
    assert took[1] <= 5 * took[0] + 0.25, f"valid {took[0]:.3f}s, invalid {took[1]:.3f}s"


def test_frame_without_rows_is_quarantined():
    _quarantined_alone(fuzz.frame([]))


@pytest.mark.parametrize("text", ["1_000", "٣", "1_0.5"])
def test_consumption_outside_decimal_syntax_is_quarantined(text):
    assert "consumption" in _quarantined_alone(fuzz.csv(_row(consumption=text)))[0]


def test_conflicting_duplicate_is_quarantined_and_the_first_kept():
    first, second = fuzz.csv(_row()), fuzz.csv(_row(consumption=0.75))
    topo = _topology()
    r = topo.process("gas", [Message(first, 0, 0, 1772409700.0),
                             Message(second, 0, 1, 1772409700.0)])
    assert r.accepted == 1
    assert [x.reason for x in r.rejects] == ["conflicting duplicate"]
    assert topo.open_windows("gas", "state", 60).sum.tolist() == [0.25]


@pytest.mark.stack
@pytest.mark.slow
def test_live_worker_survives_the_inputs_that_crash_the_topology(stack, tmp_path, unique):
    from tests.support.kafka import producer as ordered_producer
    from tests.support.live import LiveCase

    base = _one_row_frame()
    at = base.rindex(struct.pack("<ii", 0, 11)) + 7
    poison = [b'{"a":' + b"[" * 1500 + b"]" * 1500 + b"}", fuzz.csv(_row(service_id="é" * 36)),
              base[:at] + bytes([base[at] ^ 1]) + base[at + 1:]]
    good = [fuzz.csv(_row(start_ts=1772409600 + 5 * i, end_ts=1772409605 + 5 * i))
            for i in range(4)]
    case = LiveCase(f"fzp{unique}", tmp_path)
    case.create_topics()
    try:
        producer = ordered_producer(stack.kafka)
        for value in good[:2] + poison + good[2:]:
            producer.produce(f"{case.name}-gas", value, key=SID.encode())
        assert producer.flush(30) == 0
        case.start_worker()
        case.wait_until({"electricity": 0, "gas": len(good) + len(poison), "water": 0},
                        timeout=60)
        time.sleep(1.0)
        assert case.workers[0].poll() is None
        assert len(case.read_topic("quarantine")) == len(poison)
        assert case.state_totals()["gas"][0] == len(good)
    finally:
        case.cleanup()


@pytest.mark.parametrize("field,text", [
    ("consumption", "0.5"), ("consumption", "5e-1"), ("consumption", ".5"),
    ("consumption", "1_000"), ("consumption", " 0.5"), ("consumption", "\u0663"),
    ("consumption", "0x1A"), ("end_ts", "1772409605"), ("end_ts", "0x69a4d305"),
    ("end_ts", "1772409605.0"), ("end_ts", "1_772_409_605")])
def test_a_number_in_text_has_one_syntax_in_csv_json_and_frames(field, text):
    """Plain decimal, the same rule whichever encoding carries the text: Python's float()
    takes 1_000, ' 0.5' and '\u0663'; Arrow's integer cast takes hexadecimal."""
    import pyarrow as pa

    rec = _row(**{field: text})
    schema = fuzz.SCHEMA.set(fuzz.SCHEMA.get_field_index(field), pa.field(field, pa.string()))
    fates = [_topology().process("gas", [Message(v, 0, 0, 1772409700.0)]).accepted
             for v in (fuzz.csv(rec), json.dumps(rec).encode(), fuzz.frame([rec], schema))]
    assert fates in ([1, 1, 1], [0, 0, 0]), fates
    assert fates[0] == (text.strip() == text and "_" not in text and text.isascii()
                        and not text.startswith("0x"))


def test_an_unforeseen_exception_in_decode_quarantines_only_its_message(monkeypatch):
    """Defence in depth: an exception decode did not foresee, in the per-message split or
    in the column step (CSV/JSON rows typed together, frames typed together), costs the
    message that raised it ('undecodable: <type>'), never the batch or the worker."""
    import pyarrow as pa

    import auth_kappa.topology.decode as dec

    split, codes, from_table = dec._split, dec.encode_codes, dec._from_table

    def split_(value, utility):
        if b"boom-split" in value:
            raise ZeroDivisionError
        return split(value, utility)

    def codes_(values, vocabulary):
        if not isinstance(values, (pa.Array, pa.ChunkedArray)) and "boom-type" in values:
            raise LookupError
        return codes(values, vocabulary)

    def from_table_(utility, table, origin, ref):
        if "boom-frame" in table.column("user_name").to_pylist():
            raise OverflowError
        return from_table(utility, table, origin, ref)

    def parse_(values, max_bytes):   # the whole-fetch CSV parser fails: all go one by one
        raise MemoryError

    monkeypatch.setattr(dec.csv_batch, "parse", parse_)
    monkeypatch.setattr(dec, "_split", split_)
    monkeypatch.setattr(dec, "encode_codes", codes_)
    monkeypatch.setattr(dec, "_from_table", from_table_)
    at = [dict(start_ts=1772409600 + 5 * i, end_ts=1772409605 + 5 * i) for i in range(7)]
    values = [fuzz.csv(_row(**at[0])), fuzz.csv(_row(user_name="boom-split", **at[1])),
              json.dumps(_row(**at[2])).encode(), fuzz.csv(_row(type="boom-type", **at[3])),
              fuzz.frame([_row(user_name="boom-frame", **at[4])]), fuzz.frame([_row(**at[5])]),
              fuzz.csv(_row(**at[6]))]
    r = _topology().process("gas", [Message(v, 0, i, 1772409700.0) for i, v in enumerate(values)])
    assert r.accepted == 4
    assert [(x.offset, x.reason) for x in r.rejects] == [
        (1, "undecodable: ZeroDivisionError"), (3, "undecodable: LookupError"),
        (4, "undecodable: OverflowError")]
    assert [x.raw for x in r.rejects] == [values[1], values[3], values[4]]


# --- regressions: fixed in the working tree while the fuzzer was written ----------------

@pytest.mark.parametrize("value", [
    json.dumps(_row(consumption=[1])).encode(),      # was: ValueError, shape (1,1) broadcast
    json.dumps(_row(end_ts=[1772409605])).encode(),
    json.dumps(_row(consumption=True)).encode(),     # was: accepted as 1.0 (issue 9 #7)
])
def test_json_containers_and_bools_alone_in_a_batch_are_quarantined(value):
    _quarantined_alone(value)


def test_generator_is_deterministic_and_only_makes_invalid_kinds():
    a = fuzz.hostile(500, 3, "gas", 1.8e9)
    assert a == fuzz.hostile(500, 3, "gas", 1.8e9)
    assert all(h.records >= 1 for h in a)
    safe = fuzz.safe(2000, 3, "water", 1.8e9)
    assert not {(h.kind, h.variant) for h in safe} & set(fuzz.KNOWN_DEFECTS)
    assert {h.kind for h in safe} == set(fuzz.KINDS)
