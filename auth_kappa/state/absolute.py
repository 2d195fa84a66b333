"""Absolute writes of per-state windows, for corrections.

The live path merges per-state *deltas* into totals (checkpoint_states.lua), which is
right for a stream and wrong for a correction: replaying a range must SET the totals it
recomputed, so running it twice changes nothing. Meter windows need no such path: the
live checkpoint already writes them absolute.
"""

from __future__ import annotations

import numpy as np

from auth_kappa.state import codec
from auth_kappa.state.redis_store import TTL_SLACK, RedisWindowStore
from auth_kappa.state.window_table import Rows
from auth_kappa.topology.schema import STATES

CHUNK = 20_000


def state_fields(rows: Rows) -> list[str]:
    states = np.array(STATES, dtype=object)[rows.k0.astype(np.int64)]
    return [f"{s}:{int(w)}" for s, w in zip(states, rows.window_start, strict=True)]


def set_state_windows(store: RedisWindowStore, utility: str, size: int, rows: Rows,
                      keep: int) -> int:
    """HSET the given state windows to these exact values, in one transaction."""
    if not len(rows):
        return 0
    key = store.state_key(utility, size)
    vals = codec.values(rows, 0)
    raw = vals.tobytes()
    width = vals.dtype.itemsize
    names = state_fields(rows)
    pipe = store.client.pipeline(transaction=True)
    for lo in range(0, len(rows), CHUNK):
        pipe.hset(key, mapping={names[i]: raw[i * width:(i + 1) * width]
                                for i in range(lo, min(lo + CHUNK, len(rows)))})
    pipe.expire(key, keep + TTL_SLACK)
    pipe.execute()
    return len(rows)


def read_state_windows(store: RedisWindowStore, utility: str, size: int) -> dict[str, bytes]:
    raw = store.client.hgetall(store.state_key(utility, size))
    return {k.decode(): v for k, v in raw.items()}
