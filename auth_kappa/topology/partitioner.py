"""Kafka's default key partitioner (Java client's murmur2), vectorised over many keys.

partition = (murmur2(key) & 0x7fffffff) % partitions, the rule of the Java client,
aiokafka's DefaultPartitioner and librdkafka's `murmur2_random` for non-null keys. The
simulator's frame sink groups readings with it (a meter's readings land where its single
messages, key = service_id, would go), and on a Redis Cluster a meter's keys live in its
partition's slot, found with it (state/layout.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_SEED = np.uint32(0x9747B28C)
_M = np.uint32(0x5BD1E995)


def murmur2(keys: Sequence[bytes]) -> np.ndarray:
    """uint32 murmur2 hash per key; keys of one length are hashed together as a matrix."""
    out = np.empty(len(keys), np.uint32)
    lengths = np.fromiter(map(len, keys), np.int64, len(keys))
    for length in np.unique(lengths):
        idx = np.flatnonzero(lengths == length)
        out[idx] = _murmur2_fixed([keys[i] for i in idx], int(length))
    return out


def _murmur2_fixed(keys: list[bytes], length: int) -> np.ndarray:
    n = len(keys)
    data = np.frombuffer(b"".join(keys), np.uint8).reshape(n, length)
    h = np.full(n, _SEED ^ np.uint32(length & 0xFFFFFFFF), np.uint32)
    blocks = length // 4
    if blocks:
        words = np.ascontiguousarray(data[:, :blocks * 4]).view("<u4").astype(np.uint32)
        for j in range(blocks):  # uint32 arithmetic wraps like Java's int
            k = words[:, j] * _M
            k ^= k >> np.uint32(24)
            k *= _M
            h *= _M
            h ^= k
    tail = length & 3
    if tail:
        base = blocks * 4
        for t in range(tail - 1, -1, -1):
            h ^= data[:, base + t].astype(np.uint32) << np.uint32(8 * t)
        h *= _M
    h ^= h >> np.uint32(13)
    h *= _M
    h ^= h >> np.uint32(15)
    return h


def partitions_of(keys: Sequence[bytes], partitions: int) -> np.ndarray:
    """The partition Kafka's default partitioner picks for each key (int32)."""
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")
    return ((murmur2(keys) & np.uint32(0x7FFFFFFF)) % np.uint32(partitions)).astype(np.int32)
