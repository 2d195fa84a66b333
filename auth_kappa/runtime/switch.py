"""Namespace switch for a rebuild: freeze on request, then follow the pointer. No gap, no
double count.

The rebuild (replay.rebuild) and the live workers meet in Redis:
1. rebuild sets  auth:<old>:control  freeze=<new>
2. each worker checkpoints into <old>, pauses its partitions and acknowledges in
   auth:<old>:frozen:<group>  "<utility>:<partition>" -> its generation for it
3. rebuild catches <new> up to exactly the offsets frozen in <old>, checkpoints, and
   SETs the pointer (auth:namespace by default) to <new>: readers switch here
4. each worker that follows the pointer (AUTH_NAMESPACE unset) switches its store to
   <new>, re-runs assignment (offsets, highs, generations from <new>) and resumes.
If the rebuild gives up before 3 it deletes the freeze and workers resume in <old>.
"""

from __future__ import annotations

from collections.abc import Mapping

import redis

from auth_kappa.state.redis_store import RedisWindowStore


def generations(store: RedisWindowStore, partitions: list[str]) -> dict[str, int]:
    """Each partition's claim number in the store's namespace ("gas:3" -> n): the ones a
    freeze acknowledgement and a move to a new namespace are checked against. One hash on
    one Redis; on a cluster each partition's own (its checkpoint's slot)."""
    if not store.cluster:
        raw = store.client.hgetall(store.keys.generations)
        return {k.decode(): int(v) for k, v in raw.items()}
    pipe = store.client.pipeline(transaction=False)
    for name in partitions:
        pipe.hget(store.keys.progress("generations", name), name)
    return {n: int(v) for n, v in zip(partitions, pipe.execute(), strict=True) if v is not None}


class NamespaceFollower:
    """One round trip per poll: the pointer, and a freeze request in our namespace."""

    def __init__(self, store: RedisWindowStore, pointer: str, follows: bool) -> None:
        self.store, self.pointer, self.follows = store, pointer, follows

    def poll(self) -> tuple[str | None, str | None]:
        """("switch", ns) | ("freeze", ns) | (None, None); ("unknown", None) when Redis
        did not answer (then nothing changes: a frozen worker stays frozen)."""
        pipe = self.store.client.pipeline(transaction=False)
        pipe.get(self.pointer)
        pipe.hget(self.store.keys.control, "freeze")
        try:
            pointer, freeze = pipe.execute()
        except redis.RedisError:
            return "unknown", None
        if self.follows and pointer and pointer.decode() != self.store.namespace:
            return "switch", pointer.decode()
        if freeze:
            return "freeze", freeze.decode()
        return None, None

    def acknowledge(self, generations: Mapping[str, int]) -> None:
        if generations:
            self.store.client.hset(self.store.keys.frozen,
                                   mapping={k: int(v) for k, v in generations.items()})
