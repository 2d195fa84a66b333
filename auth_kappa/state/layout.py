"""Every Redis key AUTH-Kappa reads or writes, named in one place.

Writers (the store, replay, the rebuild's switch) and readers (Engine.connect, the
dashboard) all build their keys here, so a layout change is a change to this module.

One Redis (prefix `auth:<ns>:`, ns = the namespace readers follow, e.g. v1):
  m:{<service_id>}:<utility>:<size>   HASH  window_start -> value (+ seen bits, finest size)
  f:{<service_id>}:<utility>:<size>   HASH  window_start -> first value of each seen second,
                                            open finest windows only (conflicting resends)
  s:<utility>:<size>                  HASH  <state>:<window_start> -> value
  newest:s:<utility>:<size>           STRING  newest window_start it held (retention cut)
  offsets:<group>                     HASH  <topic>:<partition> -> next offset to read
  highs:<group>                       HASH  <topic>:<partition> -> highest end_ts applied
  marks:<group>                       HASH  <topic>:<partition> -> idle advance past it
  stats:<group>                       HASH  <counter>:<utility> -> running total, checkpoint_ts
  generations:<group>                 HASH  <topic>:<partition> -> owner's claim number
  meters:<group>:<utility>:<p>        SET   service_ids seen on partition p (to reopen their
                                            open windows after a restart)
  partitions                          HASH  utility -> partitions of its topic
  insight:last:<group>:<utility>:<p>  HASH  service_id -> its last reading's end_ts (gaps)
  insight:runs:<group>:<utility>:<p>  HASH  service_id -> start,last hour,lowest (leak runs)
  insight:alerts:<group>:<utility>:<p> HASH <kind>:<service_id> -> open alert (JSON)
  insight:history:<group>:<utility>:<p> ZSET closed alerts (JSON) by end, kept ALERT_DAYS
  insight:days:<group>:<utility>:<p>  HASH  service_id -> its newest local day, still open
  d:{<service_id>}:<utility>          HASH  local date -> a day that is over (bills.Day),
                                            kept DAYS_KEPT days
  similar:<utility>:<p>:<date>        HASH  <state>:<type> -> KLL sketch of the day totals
                                            of partition p's meters (similar homes)
  control                             HASH  freeze=<new ns> (a rebuild's switch request)
  frozen:<group>                      HASH  <topic>:<partition> -> generation, once frozen
  changes                             STREAM  one notice per checkpoint: its sequence number
                                            and the meter windows it wrote (values), capped
                                            (MAXLEN ~); followed by dashboards/changes.py
  changes:n                           STRING  the last notice's sequence number
Outside any namespace:
  auth:namespace (AUTH_POINTER)       STRING  the namespace readers and workers follow

A Redis Cluster (cluster=True) runs a MULTI/EXEC only inside one hash slot, and a
checkpoint's atomic unit is one source partition (runtime/commits.py). So every key a
checkpoint writes carries its partition's tag {<utility>:<p>}:
  m:{<utility>:<p>}:<service_id>:<size>, f:{..}:<service_id>:<size>   meter windows
  s:{<utility>:<p>}:<size>, newest:s:{..}:<size>     that partition's share of state windows
  <kind>:{<utility>:<p>}:<group>                     offsets, highs, marks, stats, generations
  meters:{<utility>:<p>}:<group>, insight:<kind>:{<utility>:<p>}:<group>
  d:{<utility>:<p>}:<service_id>, similar:{<utility>:<p>}:<date>
  changes:{<utility>:<p>}, changes:{<utility>:<p>}:n     its checkpoints' notices
A meter's partition is Kafka's key partitioner over the topic's partition count (stored
under `partitions`; topology/partitioner.py), which is how readers find its keys; a
reading on another partition is quarantined there. A state window is the sum of its
partitions' shares, read with one pipelined round trip per node. A failover loses a
partition's windows and offsets together (one slot, one replication stream).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from auth_kappa.topology.partitioner import partitions_of

POINTER = "auth:namespace"
DEFAULT_NAMESPACE = "v1"   # what a Redis that never saw a rebuild holds


def followed(pointer_value: bytes | str | None) -> str:
    """The namespace a pointer's value names (none set yet: the first one)."""
    if isinstance(pointer_value, bytes):
        pointer_value = pointer_value.decode()
    return pointer_value or DEFAULT_NAMESPACE


@dataclass(frozen=True)
class Layout:
    """The keys of one namespace, as seen by one consumer group."""

    namespace: str = DEFAULT_NAMESPACE
    group: str = "auth-kappa"
    cluster: bool = False

    @property
    def prefix(self) -> str:
        return f"auth:{self.namespace}:"

    def moved(self, namespace: str) -> Layout:
        """The same group's keys in another namespace (a rebuild's switch)."""
        return replace(self, namespace=namespace)

    @staticmethod
    def tag(utility: str, partition: int) -> str:
        """A partition's hash tag on a cluster: its checkpoint's keys share one slot."""
        return f"{{{utility}:{int(partition)}}}"

    # ---- window state
    def meter(self, service_id: str, utility: str, size: int, partition: int | None = None
              ) -> str:
        head, tail = self.meter_parts("m", utility, size, partition)
        return f"{head.decode()}{service_id}{tail.decode()}"

    def first_values(self, service_id: str, utility: str, size: int,
                     partition: int | None = None) -> str:
        head, tail = self.meter_parts("f", utility, size, partition)
        return f"{head.decode()}{service_id}{tail.decode()}"

    def meter_parts(self, kind: str, utility: str, size: int, partition: int | None = None
                    ) -> tuple[bytes, bytes]:
        """(head, tail) around the service_id, for keys packed by the array: kind is "m"
        (windows) or "f" (first values). A cluster's keys need the meter's partition."""
        if self.cluster:
            return (f"{self.prefix}{kind}:{self.tag(utility, self._need(partition))}:".encode(),
                    f":{size}".encode())
        return f"{self.prefix}{kind}:{{".encode(), f"}}:{utility}:{size}".encode()

    def state(self, utility: str, size: int, partition: int | None = None) -> str:
        if self.cluster:
            return f"{self.prefix}s:{self.tag(utility, self._need(partition))}:{size}"
        return f"{self.prefix}s:{utility}:{size}"

    def state_keys(self, utility: str, size: int, partitions: int) -> list[str]:
        """The keys whose fields add up to a utility's state windows: one, or on a
        cluster one share per partition of its topic."""
        if self.cluster:
            return [self.state(utility, size, p) for p in range(partitions)]
        return [self.state(utility, size)]

    def newest(self, utility: str, size: int, partition: int | None = None) -> str:
        """Newest window_start the state key has held: where its retention cut stands."""
        return f"{self.prefix}newest:{self.state(utility, size, partition)[len(self.prefix):]}"

    def meters(self, utility: str, partition: int) -> str:
        if self.cluster:
            return f"{self.prefix}meters:{self.tag(utility, partition)}:{self.group}"
        return f"{self.prefix}meters:{self.group}:{utility}:{partition}"

    def insight(self, kind: str, utility: str, partition: int) -> str:
        """One partition's insight state: kind last, runs, alerts or history."""
        if self.cluster:
            return f"{self.prefix}insight:{kind}:{self.tag(utility, partition)}:{self.group}"
        return f"{self.prefix}insight:{kind}:{self.group}:{utility}:{partition}"

    def days(self, service_id: str, utility: str, partition: int | None = None) -> str:
        """A meter's local days that are over (bills, daily peaks)."""
        if self.cluster:
            return f"{self.prefix}d:{self.tag(utility, self._need(partition))}:{service_id}"
        return f"{self.prefix}d:{{{service_id}}}:{utility}"

    def day_keys(self, service_id: str, utility: str, partitions: int) -> list[str]:
        """What holds a meter's days: its past-days hash, then the open-day hashes that may
        hold its open day (on a cluster its own partition's, by Kafka's key partitioner;
        on one Redis every partition's, as a meter keyed elsewhere may sit on any)."""
        if self.cluster:
            home = int(partitions_of([service_id.encode()], partitions)[0])
            return [self.days(service_id, utility, home),
                    self.insight("days", utility, home)]
        return [self.days(service_id, utility),
                *(self.insight("days", utility, p) for p in range(partitions))]

    def similar(self, utility: str, partition: int, date: str) -> str:
        """Partition p's share of one local day's similar-homes sketches."""
        if self.cluster:
            return f"{self.prefix}similar:{self.tag(utility, partition)}:{date}"
        return f"{self.prefix}similar:{utility}:{partition}:{date}"

    @property
    def partitions(self) -> str:
        return f"{self.prefix}partitions"

    def changes(self, home: str | None = None) -> tuple[str, str]:
        """(stream, sequence counter) of the checkpoints' change notices: one pair per
        namespace, or on a cluster per partition ("gas:3", its checkpoint's slot)."""
        if self.cluster and home is not None:
            utility, p = home.rsplit(":", 1)
            stream = f"{self.prefix}changes:{self.tag(utility, int(p))}"
        else:
            stream = f"{self.prefix}changes"
        return stream, f"{stream}:n"

    # ---- the group's progress
    def progress(self, kind: str, name: str | None = None) -> str:
        """The hash of `kind` (offsets, highs, marks, stats, generations) holding partition
        `name` ("gas:3"). One per group on one Redis; one per partition on a cluster (no
        name there: the group's own, for a heartbeat with no partition)."""
        if not self.cluster:
            return f"{self.prefix}{kind}:{self.group}"
        if name is None:
            return f"{self.prefix}{kind}:{{{self.group}}}"
        utility, p = name.rsplit(":", 1)
        return f"{self.prefix}{kind}:{self.tag(utility, int(p))}:{self.group}"

    def progress_keys(self, kind: str, counts: Mapping[str, int]) -> list[str]:
        """Every hash of `kind`, given each utility's partition count (a cluster's; one
        Redis has one hash)."""
        if not self.cluster:
            return [self.progress(kind)]
        return [self.progress(kind), *(self.progress(kind, f"{u}:{p}")
                                       for u, n in counts.items() for p in range(n))]

    @property
    def offsets(self) -> str:
        return self.progress("offsets")

    @property
    def highs(self) -> str:
        return self.progress("highs")

    @property
    def marks(self) -> str:
        return self.progress("marks")

    @property
    def stats(self) -> str:
        return self.progress("stats")

    @property
    def generations(self) -> str:
        return self.progress("generations")

    def _need(self, partition: int | None) -> int:
        if partition is None:
            raise ValueError("a Redis Cluster layout names a meter's keys by its partition")
        return int(partition)

    # ---- a rebuild's switch
    @property
    def control(self) -> str:
        return f"{self.prefix}control"

    @property
    def frozen(self) -> str:
        return f"{self.prefix}frozen:{self.group}"

    @property
    def everything(self) -> str:
        """SCAN pattern of every key in the namespace."""
        return f"{self.prefix}*"


def day_records(past: Iterable[bytes], open_days: Iterable[bytes | None]) -> list[bytes]:
    """The replies of day_keys (HVALS of the past days, HGET of each open-day hash) as one
    list of day records: the past ones, then the open one."""
    return [*past, *(v for v in open_days if v is not None)]


def sketch_shares(hashes: Iterable[Mapping[bytes, bytes]]) -> dict[str, list[bytes]]:
    """Every partition's similar-homes hash of a day: "<state>:<type>" -> the sketches
    to merge."""
    out: dict[str, list[bytes]] = {}
    for fields in hashes:
        for f, v in fields.items():
            out.setdefault(f.decode(), []).append(v)
    return out


def merged(kind: str, hashes: Iterable[Mapping]) -> dict[str, float]:
    """Several progress hashes (a cluster's, one per partition) as one: counters add up,
    checkpoint_ts is the newest, a partition's fields are its own."""
    out: dict[str, float] = {}
    for h in hashes:
        for k, v in h.items():
            k = k.decode() if isinstance(k, bytes) else k
            v = float(v)
            if kind != "stats":
                out[k] = v
            elif k == "checkpoint_ts":
                out[k] = max(v, out.get(k, v))
            else:
                out[k] = out.get(k, 0.0) + v
    return out


def partition_clocks(highs: Mapping[str, float], marks: Mapping[str, float] | None = None
                     ) -> dict[str, float]:
    """Per "<utility>:<partition>": its clock, or its idle mark when that is past it.
    Without marks, the clocks alone (what a correction may treat as final)."""
    marks = marks or {}
    return {name: max(float(highs.get(name, -math.inf)), float(marks.get(name, -math.inf)))
            for name in {*highs, *marks}}


def watermarks_and_newest(highs: Mapping[str, float], marks: Mapping[str, float] | None = None
                          ) -> tuple[dict[str, float], dict[str, float]]:
    """The one watermark-from-highs, for every reader of committed clocks. Per utility:
    (lowest partition clock-or-mark: the watermark, highest: its newest windows). Without
    marks, clocks alone (a correction: a mark never makes a meter window final)."""
    bounds = utility_clocks(partition_clocks(highs, marks))
    return ({u: lo for u, (lo, _) in bounds.items()}, {u: hi for u, (_, hi) in bounds.items()})


def utility_clocks(clocks: Mapping[str, float]) -> dict[str, tuple[float, float]]:
    """Per utility: (lowest, highest) partition clock. The lowest is the utility's
    watermark, the highest where its newest windows stand."""
    out: dict[str, tuple[float, float]] = {}
    for name, v in clocks.items():
        utility = name.rsplit(":", 1)[0]
        lo, hi = out.get(utility, (v, v))
        out[utility] = (min(lo, v), max(hi, v))
    return out
