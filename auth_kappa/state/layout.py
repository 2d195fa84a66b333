"""Every Redis key AUTH-Kappa reads or writes, named in one place.

Writers (the store, replay, the rebuild's switch) and readers (Engine.connect, the
dashboard) all build their keys here, so a layout change is a change to this module.

Layout (prefix `auth:<ns>:`, ns = the namespace readers follow, e.g. v1):
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
  control                             HASH  freeze=<new ns> (a rebuild's switch request)
  frozen:<group>                      HASH  <topic>:<partition> -> generation, once frozen
Outside any namespace:
  auth:namespace (AUTH_POINTER)       STRING  the namespace readers and workers follow
The hash tag {service_id} keeps one meter's keys in one cluster slot.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

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

    @property
    def prefix(self) -> str:
        return f"auth:{self.namespace}:"

    def moved(self, namespace: str) -> Layout:
        """The same group's keys in another namespace (a rebuild's switch)."""
        return replace(self, namespace=namespace)

    # ---- window state
    def meter(self, service_id: str, utility: str, size: int) -> str:
        return f"{self.prefix}m:{{{service_id}}}:{utility}:{size}"

    def first_values(self, service_id: str, utility: str, size: int) -> str:
        return f"{self.prefix}f:{{{service_id}}}:{utility}:{size}"

    def meter_parts(self, kind: str, utility: str, size: int) -> tuple[bytes, bytes]:
        """(head, tail) around the service_id, for keys packed by the array: kind is "m"
        (windows) or "f" (first values)."""
        return f"{self.prefix}{kind}:{{".encode(), f"}}:{utility}:{size}".encode()

    def state(self, utility: str, size: int) -> str:
        return f"{self.prefix}s:{utility}:{size}"

    def newest(self, utility: str, size: int) -> str:
        """Newest window_start the state key has held: where its retention cut stands."""
        return f"{self.prefix}newest:s:{utility}:{size}"

    def meters(self, utility: str, partition: int) -> str:
        return f"{self.prefix}meters:{self.group}:{utility}:{partition}"

    # ---- the group's progress
    @property
    def offsets(self) -> str:
        return f"{self.prefix}offsets:{self.group}"

    @property
    def highs(self) -> str:
        return f"{self.prefix}highs:{self.group}"

    @property
    def marks(self) -> str:
        return f"{self.prefix}marks:{self.group}"

    @property
    def stats(self) -> str:
        return f"{self.prefix}stats:{self.group}"

    @property
    def generations(self) -> str:
        return f"{self.prefix}generations:{self.group}"

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


def partition_clocks(highs: Mapping[str, float], marks: Mapping[str, float] | None = None
                     ) -> dict[str, float]:
    """Per "<utility>:<partition>": its clock, or its idle mark when that is past it.
    Without marks, the clocks alone (what a correction may treat as final)."""
    marks = marks or {}
    return {name: max(float(highs.get(name, -math.inf)), float(marks.get(name, -math.inf)))
            for name in {*highs, *marks}}


def utility_clocks(clocks: Mapping[str, float]) -> dict[str, tuple[float, float]]:
    """Per utility: (lowest, highest) partition clock. The lowest is the utility's
    watermark, the highest where its newest windows stand."""
    out: dict[str, tuple[float, float]] = {}
    for name, v in clocks.items():
        utility = name.rsplit(":", 1)[0]
        lo, hi = out.get(utility, (v, v))
        out[utility] = (min(lo, v), max(hi, v))
    return out
