"""Time-of-use tariffs: which price applies to an hour of a meter's local week."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from auth_kappa.errors import UserError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Period:
    name: str
    price: float
    days: frozenset[int]          # 0 = Monday
    hours: tuple[int, int]        # local [from, to)


@dataclass(frozen=True)
class Tariff:
    periods: dict[str, tuple[Period, ...]]   # utility -> in order of precedence

    @classmethod
    def load(cls, path: str | Path | None = None) -> Tariff:
        """A TOML tariff (see example_tariff.toml, the default); a mistake in it is one line."""
        try:
            text = Path(path).read_text() if path else \
                resources.files("auth_kappa.insights").joinpath("example_tariff.toml").read_text()
            raw = tomllib.loads(text)
            periods = {u: tuple(_period(p) for p in spec["periods"]) for u, spec in raw.items()}
        except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
            raise UserError(f"tariff {path or 'example'}: {exc}") from None
        return cls(periods)

    def period_of(self, utility: str, weekday: np.ndarray, hour: np.ndarray) -> np.ndarray:
        """The period index of each (local weekday, local hour); -1 where none applies."""
        out = np.full(len(hour), -1, np.int64)
        for i, p in reversed(list(enumerate(self.periods.get(utility, ())))):
            hit = np.isin(weekday, list(p.days)) & (hour >= p.hours[0]) & (hour < p.hours[1])
            out[hit] = i
        return out


def _period(spec: dict) -> Period:
    days = spec.get("days", WEEKDAYS)
    unknown = set(days) - set(WEEKDAYS)
    if unknown:
        raise ValueError(f"unknown weekday {sorted(unknown)[0]!r}; use {', '.join(WEEKDAYS)}")
    lo, hi = spec.get("hours", (0, 24))
    if not 0 <= lo < hi <= 24:
        raise ValueError(f"hours must be [from, to) within 0-24, got {[lo, hi]}")
    return Period(str(spec["name"]), float(spec["price"]),
                  frozenset(WEEKDAYS.index(d) for d in days), (int(lo), int(hi)))
