"""Dense row numbers for meters, so per-meter insight state lives in numpy arrays and a
batch of final windows updates every meter at once, not with a dict lookup per window.

A meter keeps its row for the life of the process (a few dozen bytes each, bounded by the
fleet). New meters go to a small tail index that is folded into the main one once it
grows, so a meter first seen late does not rebuild a million-row index.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from auth_kappa.topology.keys import mix, uuid_keys, uuid_text

_ZERO = np.zeros(1, np.uint64)


class MeterIndex:
    def __init__(self) -> None:
        self.k0 = np.zeros(0, np.uint64)
        self.k1 = np.zeros(0, np.uint64)
        self.text = np.zeros(0, object)        # row -> service_id
        self._main = pd.Index(np.zeros(0, np.uint64))
        self._tail = pd.Index(np.zeros(0, np.uint64))

    def __len__(self) -> int:
        return len(self.k0)

    def rows(self, k0: np.ndarray, k1: np.ndarray) -> np.ndarray:
        """The row of each key, adding the meters not seen before."""
        codes = mix(k0, k1, np.broadcast_to(_ZERO, k0.shape))
        rows = self._find(codes)
        missing = rows < 0
        if missing.any():
            pick = np.flatnonzero(missing)
            pick = pick[~pd.Series(codes[pick]).duplicated().to_numpy()]
            self._add(k0[pick], k1[pick], codes[pick])
            rows = self._find(codes)
        if not ((self.k0[rows] == k0).all() and (self.k1[rows] == k1).all()):
            raise RuntimeError("meter code collision; please report this with the input")
        return rows

    def find(self, service_id: str) -> int | None:
        """The meter's row, or None when it has none (nothing is added)."""
        key = _key(service_id)
        if key is None:
            return None
        row = int(self._find(mix(key[:1], key[1:], _ZERO))[0])
        return row if row >= 0 and self.k0[row] == key[0] and self.k1[row] == key[1] else None

    def row_of(self, service_id: str) -> int:
        key = _key(service_id)
        if key is None:
            raise ValueError(f"not a service id: {service_id!r}")
        return int(self.rows(key[:1], key[1:])[0])

    def _find(self, codes: np.ndarray) -> np.ndarray:
        rows = self._main.get_indexer(codes)
        if len(self._tail):
            miss = rows < 0
            tail = self._tail.get_indexer(codes[miss])
            rows[miss] = np.where(tail >= 0, tail + len(self._main), -1)
        return rows

    def _add(self, k0: np.ndarray, k1: np.ndarray, codes: np.ndarray) -> None:
        self.k0, self.k1 = np.r_[self.k0, k0], np.r_[self.k1, k1]
        self.text = np.r_[self.text, uuid_text(k0, k1)]
        tail = np.r_[self._tail.to_numpy(), codes]
        if len(tail) > max(1024, len(self._main) // 8):
            self._main, self._tail = pd.Index(np.r_[self._main.to_numpy(), tail]), \
                pd.Index(np.zeros(0, np.uint64))
        else:
            self._tail = pd.Index(tail)


def _key(service_id: str) -> np.ndarray | None:
    """The uuid's two uint64 halves, or None when it is not a uuid."""
    keys, valid = uuid_keys(np.array([service_id], f"S{len(service_id)}"))
    return keys[0] if valid.all() else None


def grown(values: np.ndarray, size: int, fill: object) -> np.ndarray:
    """`values` extended to at least `size` rows (doubling), new rows set to `fill`."""
    if len(values) >= size:
        return values
    out = np.full((max(size, 2 * len(values), 1024), *values.shape[1:]), fill, values.dtype)
    out[:len(values)] = values
    return out
