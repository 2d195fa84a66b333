"""Absolute writes of per-state windows, for corrections.

The live path merges per-state *deltas* into totals (state/lua/commit.lua), which is
right for a stream and wrong for a correction: replaying a range must SET the totals it
recomputed, so running it twice changes nothing. Meter windows need no such path: the
live checkpoint already writes them absolute.

On a Redis Cluster a state window is the sum of one share per source partition (each in
its partition's slot, state/layout.py): a correction sets every partition's share, and
readers compare totals (state_totals, read_state_windows).
"""

from __future__ import annotations

import numpy as np

from auth_kappa.state import codec
from auth_kappa.state.redis_store import TTL_SLACK, RedisWindowStore
from auth_kappa.topology.schema import STATES
from auth_kappa.topology.window_table import Rows

CHUNK = 20_000


def state_fields(rows: Rows) -> list[str]:
    states = np.array(STATES, dtype=object)[rows.k0.astype(np.int64)]
    return [f"{s}:{int(w)}" for s, w in zip(states, rows.window_start, strict=True)]


def state_totals(shares: Rows) -> Rows:
    """Per-partition shares (k1 = partition) summed into the windows readers see, k1 = 0:
    sums and counts add up, min and max combine."""
    if not len(shares):
        return shares
    keys = np.stack([shares.k0.astype(np.int64), shares.window_start])
    uniq, inverse = np.unique(keys, axis=1, return_inverse=True)
    inverse = inverse.reshape(-1)
    n = uniq.shape[1]
    out = Rows(uniq[0].astype(np.uint64), np.zeros(n, np.uint64), uniq[1].copy(),
               np.zeros(n, np.float64), np.zeros(n, np.int64), np.full(n, np.inf),
               np.full(n, -np.inf), None)
    np.add.at(out.sum, inverse, shares.sum)
    np.add.at(out.count, inverse, shares.count)
    np.minimum.at(out.min, inverse, shares.min)
    np.maximum.at(out.max, inverse, shares.max)
    return out


def set_state_windows(store: RedisWindowStore, utility: str, size: int, rows: Rows,
                      keep: int) -> int:
    """HSET the given state windows to these exact values, in one transaction (on a
    cluster: rows are shares, k1 = partition, one transaction per partition)."""
    if not len(rows):
        return 0
    if store.cluster:
        return _set_shares(store, utility, size, rows, keep)
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


def _set_shares(store: RedisWindowStore, utility: str, size: int, shares: Rows,
                keep: int) -> int:
    """Every partition's share of these windows set absolutely: its own rows, and the
    field deleted where it has none (a share no partition recomputed is no share)."""
    part = shares.k1.astype(np.int64)
    names = np.array(state_fields(shares), dtype=object)
    windows = list(dict.fromkeys(names.tolist()))
    vals = codec.values(shares, 0)
    raw, width = vals.tobytes(), vals.dtype.itemsize
    count = max(store.partition_counts().get(utility, 0), int(part.max()) + 1)
    for p in range(count):
        key = store.state_key(utility, size, p)
        mine = np.flatnonzero(part == p)
        gone = sorted(set(windows) - set(names[mine].tolist()))
        if not len(mine) and not gone:
            continue
        pipe = store.client.pipeline(transaction=True)   # one slot: the partition's
        for lo in range(0, len(mine), CHUNK):
            pipe.hset(key, mapping={names[i]: raw[i * width:(i + 1) * width]
                                    for i in mine[lo:lo + CHUNK].tolist()})
        for lo in range(0, len(gone), CHUNK):
            pipe.hdel(key, *gone[lo:lo + CHUNK])
        if len(mine):
            pipe.expire(key, keep + TTL_SLACK)
        pipe.execute()
    return len(shares)


def read_state_windows(store: RedisWindowStore, utility: str, size: int) -> dict[str, bytes]:
    """State windows as readers see them, field -> value (a cluster's shares summed)."""
    if store.cluster:
        return {k.decode(): v for k, v in store.state_windows(utility, size).items()}
    raw = store.client.hgetall(store.state_key(utility, size))
    return {k.decode(): v for k, v in raw.items()}


_BULK: dict[int, object] = {}


def load_meter_windows(store: RedisWindowStore, utility: str, size: int, rows: Rows,
                       keep: int) -> int:
    """Absolute meter windows into a fresh namespace (rebuild): one HSET per meter key.

    The live checkpoint script costs four commands per window (it also trims retention
    and refreshes the TTL); a rebuild writes each window once and filters retention
    itself, so it needs one HSET and one EXPIRE per key. On a cluster: partition by
    partition (rows.part), each script call routed by a key of that partition's slot."""
    if not len(rows):
        return 0
    if not store.cluster:
        return _load_meters(store, utility, size, rows, keep, None)
    from auth_kappa.topology.keys import uuid_text

    part = rows.part
    if part is None or (part < 0).any():   # no reading's partition: the partitioner's
        want = store.partition_of(utility, uuid_text(rows.k0, rows.k1))
        part = want if part is None else np.where(part >= 0, part, want)
    for p in np.unique(part):
        _load_meters(store, utility, size, rows.select(part == p), keep, int(p))
    return len(rows)


def _load_meters(store: RedisWindowStore, utility: str, size: int, rows: Rows, keep: int,
                 partition: int | None) -> int:
    """One transaction of bulk_meters.lua calls (one Redis), or on a cluster one
    partition's calls, each atomic by itself (a cluster pipeline runs no scripts; the
    rebuild's namespace has no reader until it is complete)."""
    from importlib import resources

    from auth_kappa.topology.keys import uuid_bytes

    script = _BULK.get(id(store.client))
    if script is None:
        text = resources.files("auth_kappa.state.lua").joinpath("bulk_meters.lua").read_text()
        script = _BULK[id(store.client)] = store.client.register_script(text)
    order = np.lexsort((rows.window_start, rows.k1, rows.k0))
    words = store.words(size)
    vals = codec.values(rows, words)[order]
    rec = np.zeros(len(rows), np.dtype([("sid", "S36"), ("ws", "<i8"), ("val", vals.dtype)]))
    rec["sid"] = uuid_bytes(rows.k0[order], rows.k1[order])
    rec["ws"], rec["val"] = rows.window_start[order], vals
    raw, rs = rec.tobytes(), rec.dtype.itemsize
    blobs = [("m", raw, rs)]
    # open windows' first values (conflicting resends after the switch), as the live
    # checkpoint keeps them: one record size per count of seen seconds
    groups, _ = codec.firsts(rows.select(order), words)
    for idx, firsts in groups:
        frec = np.zeros(len(idx), np.dtype([("sid", "S36"), ("ws", "<i8"),
                                            ("val", firsts.dtype)]))
        frec["sid"], frec["ws"], frec["val"] = rec["sid"][idx], rec["ws"][idx], firsts
        blobs.append(("f", frec.tobytes(), frec.dtype.itemsize))
    if partition is not None:   # ARGV only: the key names the slot the cluster routes to
        anchor = store.keys.progress("offsets", f"{utility}:{partition}")
        for kind, data, size_ in blobs:
            step = CHUNK * size_
            for lo in range(0, len(data), step):
                script(keys=[anchor], args=[*store.keys.meter_parts(kind, utility, size,
                                                                    partition),
                                            data[lo:lo + step], size_, keep + TTL_SLACK])
        return len(rows)
    pipe = store.client.pipeline(transaction=True)
    for kind, data, size_ in blobs:
        step = CHUNK * size_
        for lo in range(0, len(data), step):
            script(args=[*store.keys.meter_parts(kind, utility, size), data[lo:lo + step], size_,
                         keep + TTL_SLACK], client=pipe)
    pipe.execute()
    return len(rows)


def index_meters(store: RedisWindowStore, utility: str, rows: Rows) -> None:
    """Every meter of these windows joins its source partition's meter set, as a live
    checkpoint does with a meter's first window there (a rebuild bulk-loads windows
    without the checkpoint): the partition's next owner reopens, from the set, what is
    still open by the partition's clock."""
    if rows.part is None or not len(rows):
        return
    from auth_kappa.topology.keys import uuid_bytes

    sid = uuid_bytes(rows.k0, rows.k1)
    ttl = max(s.keep("meter") for s in store.windows) + TTL_SLACK
    pipe = store.client.pipeline(transaction=False)
    for p in np.unique(rows.part[rows.part >= 0]):
        meters = np.unique(sid[rows.part == p]).tolist()
        key = store.meters_key(utility, int(p))
        for lo in range(0, len(meters), CHUNK):
            pipe.sadd(key, *meters[lo:lo + CHUNK])
        pipe.expire(key, ttl)
    pipe.execute()
