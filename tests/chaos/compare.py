"""Score what the engine stored against the truth, window by window."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from tests.chaos.truth import SIZES, UTILITIES, Record, Truth, late_key


@dataclass
class Score:
    """The numbers of one run; every one of them must be 0 (manifest_diff included)."""

    lost: int = 0                 # sum over windows of max(0, truth count - stored count)
    double: int = 0               # sum over windows of max(0, stored count - truth count)
    misrouted: int = 0            # on-time readings found in the `late` topic
    late_unrouted: int = 0        # late readings missing from the `late` topic
    wrong: int = 0                # windows whose count, sum, min or max differ
    quarantine_diff: int = 0      # messages quarantined by one side only
    manifest_diff: int = 0        # truth's distinct valid readings vs the simulator's manifest
    not_final: int = 0            # windows that should be final but never reached `windows`
    compared: int = 0             # windows compared
    recover_s: float | None = None
    election_s: float | None = None   # a killed leader's partitions led again after this
    test_passed: bool | None = None   # cells measured by an existing pytest test
    error: str | None = None          # the harness itself failed
    notes: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        if self.error or self.test_passed is False:
            return False
        return not (self.lost or self.double or self.misrouted or self.late_unrouted
                    or self.wrong or self.quarantine_diff or self.manifest_diff
                    or self.not_final)


def compare_windows(truth: Truth, store, sample: int = 300, seed: int = 0) -> Score:
    """Every state window, and every window of `sample` random meters per utility."""
    score = Score()
    rng = random.Random(seed)
    for u in UTILITIES:
        meters = sorted(truth.meters[u])
        chosen = rng.sample(meters, min(sample, len(meters)))
        for size in SIZES:
            got = _frame_windows(store.read_windows("state", u, size))
            _score(score, truth.windows[("state", u, size)], got)
            want_m = truth.windows[("meter", u, size)]
            for sid in chosen:
                got = _frame_windows(store.read_windows("meter", u, size, key=sid))
                _score(score, _of_meter(want_m, sid), got)
    return score


_BY_METER: dict[int, dict[str, dict]] = {}


def _of_meter(table: dict, sid: str) -> dict:
    """The truth's windows of one meter (indexed once per table)."""
    index = _BY_METER.get(id(table))
    if index is None:
        _BY_METER.clear()
        index = {}
        for k, v in table.items():
            index.setdefault(k[0], {})[k] = v
        _BY_METER[id(table)] = index
    return index.get(sid, {})


def _frame_windows(df) -> dict[tuple[str, int], list]:
    return {(k, int(ws)): [s, int(c), mn, mx] for k, ws, s, c, mn, mx in
            zip(df["key"], df["window_start"], df["sum"], df["count"], df["min"], df["max"],
                strict=True)}


def _score(score: Score, want: dict, got: dict) -> None:
    for key in want.keys() | got.keys():
        w = want.get(key, [0.0, 0, math.inf, -math.inf])
        g = got.get(key, [0.0, 0, math.inf, -math.inf])
        score.compared += 1
        score.lost += max(0, w[1] - g[1])
        score.double += max(0, g[1] - w[1])
        if w[1] != g[1] or not math.isclose(w[0], g[0], rel_tol=1e-9, abs_tol=1e-9) \
                or (w[1] and (w[2] != g[2] or w[3] != g[3])):
            score.wrong += 1


def compare_late(score: Score, truth: Truth, late_records: list[Record]) -> None:
    """`late` is at-least-once: de-duplicate by source (and the reading in a frame)."""
    keyed = [(late_key(r), r.timestamp) for r in late_records]
    got = {k for k, _ in keyed if k is not None}
    wrong = [ts for k, ts in keyed if k is not None and k not in truth.late]
    if wrong:
        import datetime as dt

        first, last = (dt.datetime.fromtimestamp(t, dt.UTC).strftime("%H:%M:%S")
                       for t in (min(wrong), max(wrong)))
        score.notes.append(f"misrouted records were published {first}-{last} UTC")
    score.misrouted = len(got - truth.late)
    score.late_unrouted = len(truth.late - got)
    for label, keys in (("misrouted", got - truth.late), ("late unrouted", truth.late - got)):
        where: dict[tuple[str, int], list[int]] = {}
        for u, p, off, _, _ in keys:
            where.setdefault((u, p), []).append(off)
        if where:
            score.notes.append(f"{label} by partition: " + ", ".join(
                f"{u}:{p} {len(o)} (offsets {min(o)}-{max(o)})"
                for (u, p), o in sorted(where.items())))


def compare_quarantine(score: Score, truth: Truth, records: list[Record]) -> None:
    got = {r.headers.get("source", b"").decode(errors="replace") for r in records}
    score.quarantine_diff = len(got ^ truth.quarantined)
    if got - truth.quarantined:
        score.notes.append(f"quarantined but valid: {sorted(got - truth.quarantined)[:3]}")
    if truth.quarantined - got:
        score.notes.append(f"not quarantined: {sorted(truth.quarantined - got)[:3]}")


def compare_manifest(score: Score, truth: Truth, manifests: list[dict]) -> None:
    """The truth checked against the simulator: distinct valid readings and their sums."""
    for u in UTILITIES:
        want = sum(m["utilities"][u]["valid_readings"] for m in manifests)
        total = sum(float(m["utilities"][u]["consumption_sum"]) for m in manifests)
        score.manifest_diff += abs(want - truth.sim_valid[u])
        if not math.isclose(total, truth.sim_sum[u], rel_tol=1e-9, abs_tol=1e-6):
            score.notes.append(f"{u}: manifest sum {total} != truth {truth.sim_sum[u]}")
            score.manifest_diff += 1
