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

    @property
    def end(self) -> float:
        """Last instant a reading may end at (inclusive): start + duration."""
        return self.start + self.duration
