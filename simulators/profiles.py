"""How much each meter uses per heartbeat.

`seed` reproduces the original generator: consumption ~ triangular(0, max) per
heartbeat. The original called Python's random.triangular(0, max), whose mode defaults
to the midpoint, so the distribution is symmetric with mean max/2; we draw the same
distribution with numpy (mode = max/2), so mean = max/2 and values lie in [0, max].

`realistic` adds what real meters show: households have a morning and an evening peak
(later mornings at weekends), businesses follow weekday office hours and idle at
weekends, gas follows winter heating, water peaks in summer. Peaks use each meter's
local hour (its state's standard-time UTC offset). Shapes are normalised to a weekly
mean of 1, so the fleet mean stays near the seed profile's max/2 (same order of
magnitude: businesses are 2.5x larger, households vary by a log-normal size factor).

The maxima are per 5-second heartbeat (the original's). With another --heartbeat the
values scale by heartbeat/5, so consumption per hour does not depend on the heartbeat.

Every draw is one numpy call per chunk, consumed in stream order, so the numbers do
not depend on how the stream is cut into chunks.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from simulators.registry import Registry
from simulators.rng import stream
from simulators.states import UTC_OFFSET_HOURS

UNITS: dict[str, str] = {"electricity": "kWh", "gas": "ccf", "water": "gallons"}
SEED_MAX: dict[str, float] = {"electricity": 0.30, "gas": 0.00045, "water": 0.023}
SEED_HEARTBEAT = 5  # seconds; SEED_MAX is per this interval
# Fixed decimals per utility = 6 significant digits of the seed maximum, so every value
# prints the same way on every machine and parses back to exactly the same float.
DECIMALS: dict[str, int] = {"electricity": 6, "gas": 9, "water": 7}

BUSINESS_SCALE = 2.5
_NOISE_SHAPE = 4.0  # gamma(shape k, scale 1/k): mean 1, coefficient of variation 0.5
_SIZE_SIGMA = 0.35  # household size spread (log-normal, mean 1)


class Profile(Protocol):
    """Draws consumption (float, >= 0) for readings given by meter index and end_ts."""

    name: str

    def draw(self, utility: str, rng: np.random.Generator, meter: np.ndarray,
             end_ts: np.ndarray, heartbeat: int) -> np.ndarray: ...

    def peak_level(self, utility: str, meter: np.ndarray, end_ts: np.ndarray,
                   heartbeat: int) -> np.ndarray:
        """The meter's busiest normal mean per reading at that date (no noise), for spikes."""
        ...


class SeedProfile:
    """triangular(0, max) per heartbeat with mode max/2, as the original; mean max/2."""

    name = "seed"

    def draw(self, utility: str, rng: np.random.Generator, meter: np.ndarray,
             end_ts: np.ndarray, heartbeat: int) -> np.ndarray:
        top = SEED_MAX[utility] * heartbeat / SEED_HEARTBEAT
        return rng.triangular(0.0, top / 2, top, size=len(meter))

    def peak_level(self, utility: str, meter: np.ndarray, end_ts: np.ndarray,
                   heartbeat: int) -> np.ndarray:
        return np.full(len(meter), SEED_MAX[utility] / 2 * heartbeat / SEED_HEARTBEAT)


def _bump(hour: np.ndarray, centre: float, width: float) -> np.ndarray:
    d = (hour - centre + 12.0) % 24.0 - 12.0
    return np.exp(-0.5 * (d / width) ** 2)


def _plateau(hour: np.ndarray, begin: float, end: float, edge: float = 0.5) -> np.ndarray:
    return 1 / (1 + np.exp(-(hour - begin) / edge)) - 1 / (1 + np.exp(-(hour - end) / edge))


def _day_shapes(utility: str) -> np.ndarray:
    """shape[type, weekend, minute_of_day]; weekly mean 1 for each type."""
    h = np.arange(1440) / 60.0
    if utility == "electricity":
        home = (0.35 + 0.9 * _bump(h, 7.0, 1.0) + 1.6 * _bump(h, 19.5, 1.8) + 0.25 * _plateau(h, 9, 17),
                0.35 + 0.8 * _bump(h, 9.5, 1.5) + 1.5 * _bump(h, 19.0, 2.0) + 0.45 * _plateau(h, 10, 17))
        base = 0.3
    elif utility == "gas":
        home = (0.30 + 1.5 * _bump(h, 6.5, 1.2) + 1.1 * _bump(h, 18.5, 2.0),
                0.35 + 1.3 * _bump(h, 8.5, 1.5) + 1.1 * _bump(h, 18.5, 2.0) + 0.2 * _plateau(h, 10, 17))
        base = 0.25
    else:
        home = (0.10 + 2.2 * _bump(h, 7.0, 0.9) + 1.2 * _bump(h, 20.0, 1.5),
                0.10 + 1.8 * _bump(h, 9.0, 1.3) + 1.2 * _bump(h, 20.0, 1.5) + 0.5 * _plateau(h, 10, 17))
        base = 0.10
    office = (base + (1 - base) * _plateau(h, 8, 18), np.full_like(h, base))
    shapes = np.array([home, office])  # [type, weekend, minute]
    weekly_mean = (5 * shapes[:, 0].mean(axis=1) + 2 * shapes[:, 1].mean(axis=1)) / 7
    return shapes / weekly_mean[:, None, None]


_SEASON = {"electricity": lambda w, c2: 1 + 0.12 * c2,  # heating and cooling peaks
           "gas": lambda w, c2: 1 + 0.55 * w,  # winter heating
           "water": lambda w, c2: 1 - 0.20 * w}  # summer gardens


class RealisticProfile:
    """Daily, weekly and seasonal load shapes in each meter's local time."""

    name = "realistic"

    def __init__(self, registry: Registry, seed: int) -> None:
        n = len(registry)
        self._type = registry.is_business.astype(np.int64)
        self._utc_offset = UTC_OFFSET_HOURS[registry.state_index] * 3600
        size = stream(seed, "profile", "realistic", "size").lognormal(
            -_SIZE_SIGMA ** 2 / 2, _SIZE_SIGMA, size=n)
        self._scale = np.where(registry.is_business, BUSINESS_SCALE, size)
        self._shapes = {u: _day_shapes(u) for u in SEED_MAX}

    def draw(self, utility: str, rng: np.random.Generator, meter: np.ndarray,
             end_ts: np.ndarray, heartbeat: int) -> np.ndarray:
        local = end_ts - heartbeat / 2 + self._utc_offset[meter]  # middle of the interval
        day = np.floor_divide(local, 86400)
        minute = ((local - day * 86400) // 60).astype(np.int64)
        weekend = ((day + 3) % 7 >= 5).astype(np.int64)  # 1970-01-01 was a Thursday
        season = self._season(utility, end_ts)
        mean = (SEED_MAX[utility] / 2 * heartbeat / SEED_HEARTBEAT) * self._shapes[utility][self._type[meter], weekend, minute]
        noise = rng.gamma(_NOISE_SHAPE, 1 / _NOISE_SHAPE, size=len(meter))
        return mean * season * self._scale[meter] * noise

    @staticmethod
    def _season(utility: str, end_ts: np.ndarray) -> np.ndarray:
        angle = 2 * np.pi * ((end_ts / 86400.0) % 365.2425 - 15) / 365.2425  # 0 mid-January
        return _SEASON[utility](np.cos(angle), np.cos(2 * angle))

    def peak_level(self, utility: str, meter: np.ndarray, end_ts: np.ndarray,
                   heartbeat: int) -> np.ndarray:
        mean = SEED_MAX[utility] / 2 * heartbeat / SEED_HEARTBEAT
        peak = self._shapes[utility].max(axis=(1, 2))[self._type[meter]]  # busiest minute
        return mean * peak * self._season(utility, end_ts) * self._scale[meter]


def make_profile(name: str, registry: Registry, seed: int) -> Profile:
    """The profile called `name` for this fleet."""
    if name == "seed":
        return SeedProfile()
    return RealisticProfile(registry, seed)
