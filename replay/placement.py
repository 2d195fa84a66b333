"""Where a replay writes on a Redis Cluster, and in what pieces.

A cluster runs a MULTI/EXEC only inside one hash slot, and every key of a partition's
checkpoint carries that partition's tag (state/layout.py): a meter's windows live under
the partition Kafka's key partitioner gives it, a state window is one share per
partition. So a replay needs each utility's partition count, feeds state windows as
per-partition shares, quarantines readings on another partition than their meter's (as
the live path does), and writes one partition per checkpoint. One Redis: one call, as
ever.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import numpy as np

from auth_kappa.config import Config
from auth_kappa.errors import UserError
from auth_kappa.runtime.commits import by_partition
from auth_kappa.state.redis_store import RedisWindowStore
from auth_kappa.topology.keys import uuid_text
from auth_kappa.topology.processor import Slot, Topology
from auth_kappa.topology.window_table import Rows


def kafka_counts(config: Config) -> dict[str, int]:
    """utility -> partitions of its topic in Kafka; {} when Kafka cannot tell."""
    from replay.catchup import topic_partitions

    try:
        counts = topic_partitions(config)
    except Exception:  # noqa: BLE001 - Kafka is one source among others here
        return {}
    return {config.utility_of(t): n for t, n in counts.items() if n}


def partition_counts(config: Config, utilities: Iterable[str],
                     stores: Iterable[RedisWindowStore], kafka_first: bool) -> dict[str, int]:
    """Each utility's partition count, from Kafka's topics or a namespace's stored counts
    (what the workers placed); `kafka_first` says which is asked first. A utility with
    none found is refused in one line: its meters would have no home."""
    stores = list(stores)
    sources: list[Callable[[], Mapping[str, int]]] = [
        lambda s=s: s.partition_counts(refresh=True) for s in stores]
    sources.insert(0 if kafka_first else len(sources), lambda: kafka_counts(config))
    wanted, found = list(utilities), {}
    for source in sources:
        if all(u in found for u in wanted):
            break
        got = source()
        found.update({u: int(got[u]) for u in wanted if u not in found and got.get(u)})
    missing = [u for u in wanted if u not in found]
    if missing:
        raise UserError(
            f"on a Redis Cluster replay writes each meter under its Kafka partition, but no "
            f"partition count is known for {', '.join(missing)} (no topic "
            f"{config.prefixed(missing[0])} in Kafka, none stored in namespace "
            f"{', '.join(s.namespace for s in stores)}); create the topics or start the "
            "workers once")
    return found


def prepare(topo: Topology, store: RedisWindowStore, counts: Mapping[str, int]) -> None:
    """A cluster's topology: state windows as per-partition shares (k1 = partition), and
    readings off their meter's partition quarantined, as the live runtime has them."""
    if store.cluster:
        topo.state_per_partition = True
        topo.placement.update(counts)


def checkpoint(store: RedisWindowStore, dirty: Mapping[Slot, Rows],
               offsets: Mapping[str, int] | None = None,
               highs: Mapping[str, float] | None = None) -> int:
    """store.checkpoint, one call per source partition on a cluster (a call there speaks
    for one partition); one call on one Redis."""
    offsets, highs = offsets or {}, highs or {}
    if not store.cluster:
        return store.checkpoint(dirty, offsets, highs)
    placed = {slot: _placed(store, slot, rows) for slot, rows in dirty.items()}
    written, done = 0, set()
    for c in by_partition(placed, offsets, highs, {}, {}):
        if c.dirty or c.offsets or c.highs:
            written += store.checkpoint(c.dirty, c.offsets, c.highs)
            done |= c.partitions()
    for name, high in highs.items():   # a clock with nothing else of its partition
        if name not in done:
            store.checkpoint({}, {}, {name: high})
    return written


def _placed(store: RedisWindowStore, slot: Slot, rows: Rows) -> Rows:
    """Meter rows with a partition for every row (a row no reading touched, part -1,
    goes where the partitioner puts its meter)."""
    utility, level, _ = slot
    if level != "meter" or not len(rows):
        return rows
    part = rows.part
    if part is None or (part < 0).any():
        want = store.partition_of(utility, uuid_text(rows.k0, rows.k1)).astype(np.int32)
        part = want if part is None else np.where(part < 0, want, part)
        rows = Rows(**{**rows.__dict__, "part": part})
    return rows
