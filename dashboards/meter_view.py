"""Watched meters' windows in memory: a household page answered without asking Redis.

A meter enters from one snapshot read of Redis (its registry entry and every window it
holds at the sizes a page shows, read with the change stream's sequence number S in the
same transaction); from then on the checkpoints' change notices (auth_kappa/state/lua/
notice.lua) keep it current: a notice numbered n > S carries the absolute values its
checkpoint wrote. Values are absolute, so applying them in stream order gives exactly
what Redis holds after that notice.

Per meter, utility and size a ring of `ring` cells holds the newest windows (cell =
window_start // size % ring). A window start w is answered from memory only when
w >= floor = max(lo, top - (ring - 1) * size), lo being the oldest window the snapshot
covered and top the newest window seen: every window at or above the floor was either
loaded or written since, so a cell holding another start means "empty". Anything older
is not answered here (the caller reads Redis). Memory: capacity x 3 utilities x sum of
rings x 40 bytes (about 12 KB per meter for 1m and 1h windows), allocated up front but
touched only as meters arrive; the least recently read meter leaves first.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

from auth_kappa.state import codec
from auth_kappa.topology.keys import uuid_keys
from auth_kappa.topology.schema import UTILITIES

Key = tuple[int, int]            # the uuid's two uint64 halves (topology/keys.py)
OLD = -(1 << 40)                 # "no window yet": older than any event time
NONE = 0                         # an empty cell (validation refuses times before 2000), so
                                 # the rings start as zeros: no page touched until used
RAW = np.dtype((np.void, codec.VALUE.itemsize))   # a value as 32 opaque bytes: numpy
_EMPTY = codec.decode_values([None], 0).view(RAW)[0]   # copies those ~40x faster than fields
_UTILITY = {u: i for i, u in enumerate(UTILITIES)}
BUCKETS = 1 << 20      # lookup table of held meters (4 MB): ~1 % of 30k share a bucket


@functools.lru_cache(maxsize=65536)
def meter_key(service_id: str) -> Key:
    k, _ = uuid_keys(np.array([service_id], dtype="S36"))
    return int(k[0, 0]), int(k[0, 1])


class _Size:
    """The rings of one window size, for every slot and utility."""

    def __init__(self, size: int, ring: int, keep: int, capacity: int) -> None:
        self.size, self.ring, self.keep = size, ring, keep
        shape = (capacity, len(UTILITIES))
        self.starts = np.zeros((*shape, ring), np.int64)
        self.values = np.zeros((*shape, ring), RAW)
        self.top = np.full(shape, OLD, np.int64)
        self.lo = np.full(shape, OLD, np.int64)

    def reset(self, slot: int) -> None:
        self.starts[slot] = NONE
        self.top[slot] = self.lo[slot] = OLD

    def write(self, slots: np.ndarray, ui: int, starts: np.ndarray, values: np.ndarray) -> None:
        """Absolute values; a start below its ring's reach is dropped (never asked here).
        Flat indices and np.put: a notice's 75k rows in ~13 ms (~21 ms as 3-D fancy sets;
        the rest is random writes into the rings)."""
        row = slots * len(UTILITIES) + ui
        top = self.top.reshape(-1)   # views: the arrays are contiguous
        np.maximum.at(top, row, starts)
        keep = starts > top[row] - self.ring * self.size
        if not keep.all():
            row, starts, values = row[keep], starts[keep], values[keep]
        cell = row * self.ring + starts // self.size % self.ring
        np.put(self.starts.reshape(-1), cell, starts)
        np.put(self.values.reshape(-1), cell, values.view(RAW))

    def read(self, slot: int, ui: int, starts: list[int]) -> np.ndarray | None:
        if not starts:
            return np.zeros(0, codec.VALUE)
        top = int(self.top[slot, ui])
        floor = max(int(self.lo[slot, ui]), top - (self.ring - 1) * self.size)
        if starts[0] < floor:   # callers ask ascending starts
            return None
        w = np.asarray(starts, np.int64)
        cell = w // self.size % self.ring
        out = self.values[slot, ui, cell]   # a copy (fancy indexing)
        # retention as Redis trims it (WindowSpec.retention_cut, lua/trim_meters.lua)
        cut = (top - self.keep) // self.size * self.size
        out[(self.starts[slot, ui, cell] != w) | (w <= cut)] = _EMPTY
        return out.view(codec.VALUE)


class MeterView:
    """At most `capacity` meters; `rings`: window size -> (cells kept per utility, the
    meter windows' retention in seconds)."""

    def __init__(self, rings: Mapping[int, tuple[int, int]], capacity: int) -> None:
        self.capacity = capacity
        self.sizes = {size: _Size(size, ring, keep, capacity)
                      for size, (ring, keep) in rings.items()}
        self.slots: OrderedDict[Key, int] = OrderedDict()
        self.free = list(range(capacity - 1, -1, -1))
        self.asof = np.zeros(capacity, np.int64)   # notices up to this one are in the slot
        self.info: list[dict[str, str] | None] = [None] * capacity
        # a vectorised lookup (see _slots): bucket (the key's low bits) -> slot, -1 none,
        # -2 two held meters share it (those rows go through the dict)
        self._bucket = np.full(BUCKETS, -1, np.int32)
        self._keys = np.zeros((capacity, 2), np.uint64)   # slot -> its key

    def __len__(self) -> int:
        return len(self.slots)

    def __contains__(self, key: Key) -> bool:
        return key in self.slots

    def clear(self) -> None:
        self.slots.clear()
        self.free = list(range(self.capacity - 1, -1, -1))
        self._bucket.fill(-1)

    # ---- reads
    def answer(self, key: Key, reads: list[tuple[str, int, list[int]]]
               ) -> tuple[dict[str, str] | None, list[np.ndarray]] | None:
        """(registry entry, one VALUE array per read), as Reader.meter gives them; None
        when the meter is not here or a read reaches below what memory covers."""
        slot = self.slots.get(key)
        if slot is None:
            return None
        out = []
        for utility, size, starts in reads:
            rings = self.sizes.get(size)
            got = None if rings is None else rings.read(slot, _UTILITY[utility], starts)
            if got is None:
                return None
            out.append(got)
        self.slots.move_to_end(key)
        return self.info[slot], out

    # ---- writes
    def install(self, key: Key, asof: int, info: dict[str, str] | None,
                windows: Mapping[tuple[str, int], Mapping[bytes, bytes]]) -> None:
        """A snapshot read as of notice `asof`: every field of the meter's window hashes
        (utility, size) -> {window_start: value}."""
        slot = self.slots.get(key)
        if slot is None:
            if not self.free:
                gone, old = self.slots.popitem(last=False)
                self.free.append(old)
                b = gone[0] & (BUCKETS - 1)
                if self._bucket[b] == old:
                    self._bucket[b] = -1
            slot = self.free.pop()
            self.slots[key] = slot
            self._keys[slot] = key
            b = key[0] & (BUCKETS - 1)
            self._bucket[b] = slot if self._bucket[b] == -1 else -2
        self.asof[slot], self.info[slot] = asof, info
        one = np.array([slot])
        for size, rings in self.sizes.items():
            rings.reset(slot)
            for utility, ui in _UTILITY.items():
                fields = windows.get((utility, size)) or {}
                if not fields:
                    continue
                starts = np.fromiter((int(f) for f in fields), np.int64, len(fields))
                rings.write(one.repeat(len(starts)), ui, starts,
                            codec.decode_values(list(fields.values()), 0))
                rings.lo[slot, ui] = rings.top[slot, ui] - (rings.ring - 1) * size

    def apply(self, n: int, utility: str, size: int, records: np.ndarray) -> None:
        """One block of notice n (codec.CHANGE records): the rows of meters held here
        that are not already as of n."""
        rings = self.sizes.get(size)
        if rings is None or not self.slots or not len(records):
            return
        slots = self._slots(np.ascontiguousarray(records["k0"]),
                            np.ascontiguousarray(records["k1"]))
        pick = (slots >= 0) & (self.asof[slots] < n)   # slot -1 reads the last: masked
        starts, values = records["ws"], records["val"].view(RAW)
        if not pick.all():
            if not pick.any():
                return
            slots, starts, values = slots[pick], starts[pick], values[pick]
        rings.write(slots, _UTILITY[utility], starts, values)

    def _slots(self, k0: np.ndarray, k1: np.ndarray) -> np.ndarray:
        """Slot of each key, -1 where not held: one gather from the bucket table and a
        check of the whole key, so a notice of 20k windows costs no Python per row; the
        few rows whose bucket two held meters share go through the dict."""
        slot = self._bucket[(k0 & np.uint64(BUCKETS - 1)).astype(np.intp)].astype(np.int64)
        held = slot >= 0
        mine = slot[held]
        same = (self._keys[mine, 0] == k0[held]) & (self._keys[mine, 1] == k1[held])
        slot[held] = np.where(same, mine, -1)
        shared = np.flatnonzero(slot == -2)
        if len(shared):
            get = self.slots.get
            slot[shared] = [get(k, -1) for k in zip(k0[shared].tolist(), k1[shared].tolist(),
                                                    strict=True)]
        return slot
