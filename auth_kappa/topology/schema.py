"""The reading schema shared by decoders, the archive and the simulator's files."""

from __future__ import annotations

# The original's CSV order: service_id,user_name,type,start_ts,state,consumption,end_ts
CSV_FIELDS: tuple[str, ...] = ("service_id", "user_name", "type", "start_ts", "state",
                               "consumption", "end_ts")
UTILITIES: tuple[str, ...] = ("electricity", "gas", "water")
UNITS: dict[str, str] = {"electricity": "kWh", "gas": "ccf", "water": "gallons"}
METER_TYPES: tuple[str, ...] = ("household", "business")
STATES: tuple[str, ...] = (
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN",
    "IA", "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH",
    "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT",
    "VT", "VA", "WA", "WV", "WI", "WY",
)
