"""The meter fleet: who each meter belongs to and when it sends.

Everything is drawn with numpy in one go (no per-meter Python), so a registry of
millions of meters takes seconds, and each column has its own random stream so that
changing, say, the name lists does not reshuffle the business meters.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from simulators.names import FIRST_NAMES, LAST_NAMES
from simulators.rng import stream
from simulators.spec import SimSpec
from simulators.states import POPULATION_WEIGHTS, STATES

BUSINESS_SHARE = 0.06
TYPES: tuple[str, ...] = ("household", "business")
_REGISTERED_SPAN = 5 * 365 * 86400  # registrations spread over the 5 years before start


@dataclass(frozen=True)
class Registry:
    """Column arrays, one row per meter, in registry order (row i = meter i)."""

    service_id: pa.StringArray
    user_name: pa.StringArray
    is_business: np.ndarray  # bool
    state_index: np.ndarray  # int64 index into states.STATES
    registered_ts: np.ndarray  # int64 epoch seconds
    offset_s: np.ndarray  # int64 seconds, 0 <= offset < heartbeat

    def __len__(self) -> int:
        return len(self.is_business)

    @property
    def type(self) -> pa.StringArray:
        return pa.array(TYPES, pa.string()).take(pa.array(self.is_business.astype(np.int64)))

    @property
    def state(self) -> pa.StringArray:
        return pa.array(STATES, pa.string()).take(pa.array(self.state_index))

    def to_table(self) -> pa.Table:
        """The registry as written to registry.parquet."""
        return pa.table({
            "service_id": self.service_id,
            "user_name": self.user_name,
            "type": self.type,
            "state": self.state,
            "registered_ts": pa.array(self.registered_ts, pa.int64()),
            "offset_s": pa.array(self.offset_s, pa.int64()),
        })


def business_count(meters: int) -> int:
    """Exactly 6 % of the fleet, rounded half to even (1000 -> 60, 50 -> 3)."""
    return round(BUSINESS_SHARE * meters)


def uuid4_strings(raw: np.ndarray) -> pa.StringArray:
    """Canonical uuid4 text for each 16-byte row, same as str(uuid.UUID(bytes=b, version=4))."""
    b = raw.astype(np.uint8, copy=True).reshape(-1, 16)
    b[:, 6] = (b[:, 6] & 0x0F) | 0x40  # version 4
    b[:, 8] = (b[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    n = len(b)
    hexdigits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    nibbles = np.empty((n, 32), dtype=np.uint8)
    nibbles[:, 0::2] = hexdigits[b >> 4]
    nibbles[:, 1::2] = hexdigits[b & 0x0F]
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    for dst, src, width in ((0, 0, 8), (9, 8, 4), (14, 12, 4), (19, 16, 4), (24, 20, 12)):
        text[:, dst:dst + width] = nibbles[:, src:src + width]
    offsets = pa.array(np.arange(0, 36 * (n + 1), 36, dtype=np.int32))
    return pa.StringArray.from_buffers(n, offsets.buffers()[1], pa.py_buffer(text.tobytes()))


def make_registry(spec: SimSpec) -> Registry:
    """The fleet for spec.meters and spec.seed; identical for identical arguments."""
    n, seed = spec.meters, spec.seed
    raw = stream(seed, "registry", "service_id").integers(0, 256, size=(n, 16), dtype=np.uint8)
    service_id = uuid4_strings(raw)

    names = stream(seed, "registry", "user_name").integers(
        0, [len(FIRST_NAMES), len(LAST_NAMES)], size=(n, 2))
    user_name = pc.binary_join_element_wise(
        pa.array(FIRST_NAMES).take(pa.array(names[:, 0])),
        pa.array(LAST_NAMES).take(pa.array(names[:, 1])), " ")

    is_business = np.zeros(n, dtype=bool)
    chosen = stream(seed, "registry", "business").choice(n, size=business_count(n), replace=False)
    is_business[chosen] = True

    state_index = stream(seed, "registry", "state").choice(len(STATES), size=n, p=POPULATION_WEIGHTS)
    registered = spec.start - stream(seed, "registry", "registered").integers(
        86400, _REGISTERED_SPAN, size=n, dtype=np.int64)
    offset_s = stream(seed, "registry", "offset").integers(0, spec.heartbeat, size=n, dtype=np.int64)
    return Registry(service_id, user_name, is_business, state_index.astype(np.int64),
                    registered.astype(np.int64), offset_s)


def write_registry(registry: Registry, path: Path) -> None:
    """registry.parquet, written next to the readings so they can be joined back."""
    pq.write_table(registry.to_table(), path)
