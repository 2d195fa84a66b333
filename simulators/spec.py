"""What to simulate: one frozen, validated description shared by every sink.

Validation lives here (not in argparse) so the Python API and the CLI reject the same
mistakes with the same one-line UserError.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from auth_kappa.errors import UserError

DEFAULT_START = "2026-03-02T00:00:00Z"
PROFILES: tuple[str, ...] = ("seed", "realistic")
_EPOCH = re.compile(r"^\s*-?\d+\s*$")


def parse_start(text: str | int) -> int:
    """Epoch seconds (UTC) from '2026-03-02T00:00:00Z', '2026-03-02' or '1772409600'.

    A time without an offset is read as UTC, never local time (the original used local
    time, so two machines produced different data for the same arguments).
    """
    if isinstance(text, int):
        return text
    if _EPOCH.match(str(text)):
        return int(text)
    try:
        moment = datetime.fromisoformat(str(text).strip())
    except ValueError:
        raise UserError(f"--start: cannot read {text!r}; use ISO 8601 UTC like "
                        f"{DEFAULT_START} or epoch seconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    ts = moment.timestamp()
    if ts != int(ts):
        raise UserError(f"--start: {text!r} has fractions of a second; timestamps are whole seconds")
    return int(ts)


def format_ts(ts: float) -> str:
    """'2026-03-02T00:00:00Z' for epoch seconds."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fraction(name: str, value: float) -> float:
    if not (0.0 <= value <= 1.0) or math.isnan(value):
        raise UserError(f"--{name} must be between 0 and 1, got {value}")
    return float(value)


@dataclass(frozen=True)
class FaultSpec:
    """Fractions of readings (per utility) turned into each fault, and the delays.

    The three fractions are exclusive per reading, so they must add up to at most 1.
    """

    late_fraction: float = 0.0
    late_delay: float = 90.0
    duplicate_fraction: float = 0.0
    duplicate_delay: float = 30.0
    malformed_fraction: float = 0.0

    def __post_init__(self) -> None:
        _fraction("late-fraction", self.late_fraction)
        _fraction("duplicate-fraction", self.duplicate_fraction)
        _fraction("malformed-fraction", self.malformed_fraction)
        total = self.late_fraction + self.duplicate_fraction + self.malformed_fraction
        if total > 1.0 + 1e-12:
            raise UserError(f"late + duplicate + malformed fractions add up to {total:g}; "
                            "a reading gets at most one fault, so keep the sum <= 1")
        for name, value in (("late-delay", self.late_delay),
                            ("duplicate-delay", self.duplicate_delay)):
            if not value > 0 or math.isinf(value):
                raise UserError(f"--{name} must be a positive duration like 90s, got {value}")

    @property
    def any(self) -> bool:
        return (self.late_fraction + self.duplicate_fraction + self.malformed_fraction) > 0


INJECT_KINDS: tuple[str, ...] = ("leak", "gap", "spike")
INJECT_EXAMPLE = "--inject leak=5,gap=10,spike=5"


@dataclass(frozen=True)
class InjectSpec:
    """How many meters get each anomaly (simulators/anomalies.py); each meter at most one."""

    leak: int = 0
    gap: int = 0
    spike: int = 0

    def __post_init__(self) -> None:
        for kind in INJECT_KINDS:
            n = getattr(self, kind)
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise UserError(f"--inject {kind}={n!r}: the count must be a whole number >= 0 "
                                f"(e.g. {INJECT_EXAMPLE})")

    @property
    def total(self) -> int:
        return self.leak + self.gap + self.spike

    def as_dict(self) -> dict[str, int]:
        return {kind: getattr(self, kind) for kind in INJECT_KINDS}


def parse_inject(text: str) -> InjectSpec:
    """InjectSpec from 'leak=5,gap=10,spike=5' (any subset, each kind once)."""
    counts: dict[str, int] = {}
    for item in str(text).split(","):
        kind, eq, value = (part.strip() for part in item.partition("="))
        if not eq or kind not in INJECT_KINDS:
            raise UserError(f"--inject {text!r}: expected kind=N pairs with kind in "
                            f"{', '.join(INJECT_KINDS)} (e.g. {INJECT_EXAMPLE})")
        if kind in counts:
            raise UserError(f"--inject {text!r}: {kind} is given twice")
        if not (value.isascii() and value.isdigit()):
            raise UserError(f"--inject {kind}={value!r}: the count must be a whole number >= 0 "
                            f"(e.g. {INJECT_EXAMPLE})")
        counts[kind] = int(value)
    return InjectSpec(**counts)


# Room an injected anomaly needs (simulators/anomalies.py places them inside it).
GAP_MARGIN_S = 60  # at least this much of the run before and after a gap (or 2 heartbeats)
GAP_MIN_S, GAP_MAX_S = 600, 7200  # gaps last 10 to 120 minutes


def complete_hours(spec: SimSpec) -> tuple[int, int]:
    """(first complete clock hour, how many): hours in which every meter sends every reading.

    Such an hour starts at least one heartbeat after the run's start (a meter's readings
    end at start + offset + k * heartbeat, offset < heartbeat, k >= 1, so every end_ts
    from there on is sent) and ends by the run's end.
    """
    first = -(-(spec.start + spec.heartbeat) // 3600) * 3600
    last = math.floor(spec.end) // 3600 * 3600
    return first, max(0, (last - first) // 3600)


def gap_margin(heartbeat: int) -> int:
    return max(GAP_MARGIN_S, 2 * heartbeat)


def _check_inject(spec: SimSpec) -> None:
    """One line if the fleet or the run cannot hold the anomalies asked for."""
    inject = spec.inject
    if inject is None:
        return
    if inject.total > spec.meters:
        asked = ", ".join(f"{k} {n}" for k, n in inject.as_dict().items() if n)
        raise UserError(f"--inject asks for {inject.total} anomalous meters ({asked}) but the "
                        f"fleet has {spec.meters}; each meter gets at most one anomaly, so "
                        "raise --meters or lower the counts")
    if inject.spike and complete_hours(spec)[1] < 1:
        raise UserError("--inject spike needs a whole UTC clock hour inside the run, starting "
                        "at least one heartbeat after --start (a spike lasts that hour); "
                        "lengthen --duration (2h from a whole hour is enough)")
    room = math.floor(spec.end) - spec.start - 2 * gap_margin(spec.heartbeat)
    if inject.gap and room < GAP_MIN_S:
        need = (GAP_MIN_S + 2 * gap_margin(spec.heartbeat)) / 60
        raise UserError(f"--inject gap needs --duration of at least {need:g}m (a gap lasts "
                        f"{GAP_MIN_S // 60}-{GAP_MAX_S // 60} minutes with readings before and "
                        "after it)")


@dataclass(frozen=True)
class SimSpec:
    """A fleet and a stretch of simulated time; the only input to every generator."""

    meters: int
    seed: int = 0
    start: int = field(default_factory=lambda: parse_start(DEFAULT_START))
    duration: float = 600.0
    heartbeat: int = 5
    profile: str = "seed"
    faults: FaultSpec = field(default_factory=FaultSpec)
    inject: InjectSpec | None = None  # None: no anomalies, output as before --inject existed

    def __post_init__(self) -> None:
        if isinstance(self.meters, bool) or not isinstance(self.meters, int) or self.meters < 1:
            raise UserError(f"--meters must be a whole number >= 1, got {self.meters!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise UserError(f"--seed must be a whole number >= 0, got {self.seed!r}")
        if self.profile not in PROFILES:
            raise UserError(f"unknown profile {self.profile!r}; choose one of {', '.join(PROFILES)}")
        if not isinstance(self.heartbeat, int) or self.heartbeat < 1:
            raise UserError(f"--heartbeat must be whole seconds >= 1s, got {self.heartbeat!r}")
        if not self.duration > 0 or math.isinf(self.duration):
            raise UserError(f"--duration must be positive, got {self.duration!r}")
        if self.duration < self.heartbeat:
            raise UserError(f"--duration {self.duration:g}s is shorter than one heartbeat "
                            f"({self.heartbeat}s), so no reading would end inside it")
        _check_inject(self)

    @property
    def end(self) -> float:
        """Last instant a reading may end at (inclusive): start + duration."""
        return self.start + self.duration
