"""Durations as people write them ('90s', '1m', '48h', '7d'): one parser for the
configuration, window sizes and retention, with no dependency of its own."""

from __future__ import annotations

import re

from auth_kappa.errors import UserError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def parse_duration(text: str | int | float, *, name: str = "duration") -> float:
    """Seconds from '90s', '1m', '1.5h', '48h', '7d' or a bare number of seconds."""
    if isinstance(text, (int, float)):
        return float(text)
    m = _DURATION.match(str(text))
    if not m:
        raise UserError(f"{name}: cannot read {text!r} as a duration; use e.g. 30s, 1m, 2h, 7d")
    return float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
