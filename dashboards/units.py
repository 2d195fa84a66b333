"""Units people read on the pages, next to the units the engine stores.

The engine keeps gas in ccf (hundred cubic feet, auth_kappa/topology/schema.py UNITS, as the
simulator writes it). A household reads its gas meter's dial in cubic feet, so the pages show
cubic feet with ccf beside it: 1 ccf = 100 ft³ exactly. (Therms would need the gas's heat
content, which differs by utility and month: no exact factor.) The API keeps the stored unit;
each card carries the display unit and the factor, so the page never hard-codes one.
"""

from __future__ import annotations

from auth_kappa.topology.schema import UNITS

CUBIC_FEET_PER_CCF = 100.0
DISPLAY: dict[str, tuple[str, str, float]] = {   # unit, its short form (axes), factor
    "electricity": (UNITS["electricity"], "kWh", 1.0),
    "gas": ("cubic feet", "ft³", CUBIC_FEET_PER_CCF),
    "water": (UNITS["water"], "gal", 1.0),
}


def display(utility: str) -> dict[str, object]:
    """{"unit", "short", "factor": shown value per stored unit} for one utility."""
    unit, short, factor = DISPLAY[utility]
    return {"unit": unit, "short": short, "factor": factor}
