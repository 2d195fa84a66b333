"""The 50 states + DC: code, rough population weight, standard-time UTC offset.

Population weights (2020 census, millions, rounded) make the fleet map look like the
country instead of 51 equal slices. The UTC offset is the state's main zone in standard
time; the realistic profile uses it to put morning and evening peaks at local hours.
Daylight saving time is ignored on purpose: it would make a day 23 or 25 hours long and
buys nothing for a load shape.
"""

from __future__ import annotations

import numpy as np

from auth_kappa.topology.schema import STATES as SCHEMA_STATES

# code, population (millions), UTC offset (hours, standard time)
_TABLE: tuple[tuple[str, float, int], ...] = (
    ("AL", 5.02, -6), ("AK", 0.73, -9), ("AZ", 7.15, -7), ("AR", 3.01, -6),
    ("CA", 39.54, -8), ("CO", 5.77, -7), ("CT", 3.61, -5), ("DE", 0.99, -5),
    ("DC", 0.69, -5), ("FL", 21.54, -5), ("GA", 10.71, -5), ("HI", 1.46, -10),
    ("ID", 1.84, -7), ("IL", 12.81, -6), ("IN", 6.79, -5), ("IA", 3.19, -6),
    ("KS", 2.94, -6), ("KY", 4.51, -5), ("LA", 4.66, -6), ("ME", 1.36, -5),
    ("MD", 6.18, -5), ("MA", 7.03, -5), ("MI", 10.08, -5), ("MN", 5.71, -6),
    ("MS", 2.96, -6), ("MO", 6.15, -6), ("MT", 1.08, -7), ("NE", 1.96, -6),
    ("NV", 3.10, -8), ("NH", 1.38, -5), ("NJ", 9.29, -5), ("NM", 2.12, -7),
    ("NY", 20.20, -5), ("NC", 10.44, -5), ("ND", 0.78, -6), ("OH", 11.80, -5),
    ("OK", 3.96, -6), ("OR", 4.24, -8), ("PA", 13.00, -5), ("RI", 1.10, -5),
    ("SC", 5.12, -5), ("SD", 0.89, -6), ("TN", 6.91, -6), ("TX", 29.15, -6),
    ("UT", 3.27, -7), ("VT", 0.64, -5), ("VA", 8.63, -5), ("WA", 7.71, -8),
    ("WV", 1.79, -5), ("WI", 5.89, -6), ("WY", 0.58, -7),
)

STATES: tuple[str, ...] = SCHEMA_STATES
"""The 51 two-letter codes, in the engine's fixed order (indices are stable)."""
if tuple(code for code, _, _ in _TABLE) != STATES:
    raise ImportError("simulators/states.py rows must follow auth_kappa.topology.schema.STATES")

POPULATION_WEIGHTS: np.ndarray = np.array([p for _, p, _ in _TABLE]) / sum(p for _, p, _ in _TABLE)
UTC_OFFSET_HOURS: np.ndarray = np.array([o for _, _, o in _TABLE], dtype=np.int64)
