"""One module names every Redis key (auth_kappa/state/layout.py): what a real worker
checkpoint, a rebuild's switch and the clocks leave in Redis is exactly what it names, and
no other module spells a key."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auth_kappa.config import Config
from auth_kappa.runtime.switch import NamespaceFollower
from auth_kappa.state.layout import Layout, partition_clocks, utility_clocks
from auth_kappa.state.redis_store import RedisWindowStore
from tests.support.partitioned import T0, feed, messages, readings, runtime

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("m|f|s|newest|offsets|highs|marks|stats|generations|meters|control|frozen|insight|"
            "partitions|changes")


@pytest.mark.stack
def test_every_key_a_checkpoint_writes_is_named_by_the_layout(stack, unique):
    specs = Config.load(windows="1m,1h").window_specs()
    store = RedisWindowStore.connect(stack.redis_url, f"lay{unique}", specs, group="g")
    df = readings(meters=6, minutes=30, seed=3)   # a quarter-hour over: open days written
    try:
        rt = runtime(store, specs)
        feed(rt, messages(df), {0: 0, 1: 0}, 0.6)   # windows still open: first values too
        rt.checkpoint()
        store.checkpoint({}, {}, {}, marks={"gas:1": T0 + 900})
        NamespaceFollower(store, "unused", follows=False).acknowledge({"gas:0": 1})
        store.client.hset(store.keys.control, "freeze", "next")

        keys = Layout(f"lay{unique}", "g")
        named = {keys.offsets, keys.highs, keys.marks, keys.stats, keys.generations,
                 keys.control, keys.frozen}
        for size in (60, 3600):
            named |= {keys.state("gas", size), keys.newest("gas", size)}
            for sid in df["sid"].unique():
                named |= {keys.meter(sid, "gas", size), keys.first_values(sid, "gas", size)}
        named |= {keys.meters("gas", p) for p in (0, 1)}
        named |= {keys.insight(kind, "gas", p) for kind in ("last", "runs", "alerts", "history",
                                                            "days")
                  for p in (0, 1)} | {keys.partitions, *keys.changes()}
        found = {k.decode() for k in store.client.scan_iter(match=keys.everything, count=500)}
        assert found <= named, f"keys no layout name gives: {sorted(found - named)[:5]}"
        families = {k[len(keys.prefix):].split(":")[0] for k in found}
        assert families == set(FAMILIES.split("|")), families   # every family was written
    finally:
        store.drop_namespace()


def test_no_module_but_the_layout_spells_a_key():
    spelled = re.compile(rf"""prefix\}}({FAMILIES}):|["']auth:[a-z{{]""")
    allowed = {ROOT / "auth_kappa/state/layout.py", ROOT / "dashboards/registry.py"}
    offenders = []
    for folder in ("auth_kappa", "replay", "dashboards", "simulators"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path in allowed:
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if spelled.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


names = st.sampled_from([f"{u}:{p}" for u in ("gas", "water") for p in range(3)])
clocks = st.dictionaries(names, st.integers(0, 10**6), max_size=6)


@given(clocks, clocks)
def test_clocks_are_the_brute_force_min_and_max(highs, marks):
    per = partition_clocks(highs, marks)
    for name in {*highs, *marks}:
        assert per[name] == max(highs.get(name, -math.inf), marks.get(name, -math.inf))
    got = utility_clocks(per)
    for u in ("gas", "water"):
        mine = [v for n, v in per.items() if n.startswith(f"{u}:")]
        assert got.get(u) == ((min(mine), max(mine)) if mine else None)
    assert partition_clocks(highs) == {n: float(v) for n, v in highs.items()}
