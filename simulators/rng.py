"""One independent random stream per purpose, all derived from the user's --seed.

Every purpose (service ids, business positions, electricity consumption, faults for
gas, ...) gets its own PCG64 generator keyed by (seed, purpose). Adding a purpose, a
sink or a utility therefore never shifts the numbers drawn for any other purpose, and
the values never depend on how the stream is chunked or where it is sent.
"""

from __future__ import annotations

import zlib

import numpy as np


def stream(seed: int, *purpose: str) -> np.random.Generator:
    """Generator for (seed, purpose...); same arguments give the same numbers forever."""
    key = tuple(zlib.crc32(p.encode()) for p in purpose)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))
