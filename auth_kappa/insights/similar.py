"""Similar homes: where a meter's daily total stands among meters of the same utility,
type and state that day, from mergeable KLL quantile sketches (Apache DataSketches), one
per (utility, state, type, local day): a few KB each, never every meter's total.

A sketch with at most K values is exact; beyond, a rank is within about 1.3 % (K=200).
Sketches of two workers (or two days) merge without loss of that bound.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from datasketches import kll_doubles_sketch

K = 200
Group = tuple[str, str, str, str]    # utility, state, meter type, local day


@dataclass
class SimilarHomes:
    sketches: dict[Group, kll_doubles_sketch] = field(default_factory=dict)

    def add(self, group: Group, total: float) -> None:
        sketch = self.sketches.get(group)
        if sketch is None:
            sketch = self.sketches[group] = kll_doubles_sketch(K)
        sketch.update(total)

    def merge(self, group: Group, serialized: bytes) -> None:
        """Another process's sketch of the same group (e.g. read back from a store)."""
        self._merge(group, kll_doubles_sketch.deserialize(serialized))

    def merge_all(self, other: SimilarHomes) -> None:
        """Another partition's sketches, group by group (a copy: `other` stays as it is)."""
        for group, sketch in other.sketches.items():
            self._merge(group, kll_doubles_sketch.deserialize(sketch.serialize()))

    def _merge(self, group: Group, other: kll_doubles_sketch) -> None:
        if group in self.sketches:
            self.sketches[group].merge(other)
        else:
            self.sketches[group] = other

    def serialized(self, group: Group) -> bytes:
        return self.sketches[group].serialize()

    def standing(self, group: Group, total: float) -> dict[str, float] | None:
        """percentile (share of the group's homes using at most as much, 0-100), homes,
        median; None when the group has no day yet."""
        sketch = self.sketches.get(group)
        if sketch is None or sketch.is_empty():
            return None
        return {"percentile": 100.0 * sketch.get_rank(total, True), "homes": sketch.n,
                "median": sketch.get_quantile(0.5)}
