"""A big change notice is applied in parts with requests served between them
(dashboards/changes.py `_apply`): a read between two parts sees each meter wholly before or
wholly after the notice, across every utility and window size, and the view ends exactly
as the notice says, whatever was read in or evicted meanwhile. In-process: the notice is
built here as the store's script builds it (codec.CHANGE records)."""

from __future__ import annotations

import asyncio

import numpy as np

from auth_kappa.state import codec
from dashboards import changes as changes_module
from dashboards.changes import Changes
from dashboards.meter_view import MeterView

T0 = 1_700_000_000 // 3600 * 3600
SIZES = (60, 3600)
BLOCKS = [("electricity", 60), ("electricity", 3600), ("gas", 60), ("water", 3600)]


def _notice(keys: np.ndarray, value: float) -> dict[bytes, bytes]:
    """Every meter's current window in every block, sum = count = value; each block in
    its own order of meters."""
    fields, rng = {}, np.random.default_rng(int(value))
    for utility, size in BLOCKS:
        rec = np.zeros(len(keys), codec.CHANGE)
        mine = keys[rng.permutation(len(keys))]
        rec["k0"], rec["k1"], rec["ws"] = mine[:, 0], mine[:, 1], T0 // size * size
        rec["val"]["sum"], rec["val"]["count"] = value, int(value)
        rec["val"]["min"], rec["val"]["max"] = value, value
        fields[f"m:{utility}:{size}".encode()] = rec.tobytes()
    return fields


def _stored(value: float) -> bytes:
    """A window's value as a Redis hash field holds it."""
    v = np.zeros(1, codec.value_dtype(0))
    v["sum"], v["count"], v["min"], v["max"] = value, int(value), value, value
    return v.tobytes()


def _seen(view: MeterView, key: tuple[int, int]) -> set[float] | None:
    """The sums the view answers for one meter across the blocks (None: not held)."""
    got = view.answer(key, [(u, size, [T0 // size * size]) for u, size in BLOCKS])
    return None if got is None else {float(v["sum"][0]) for v in got[1]}


async def test_a_notice_in_parts_shows_each_meter_wholly_old_or_new(monkeypatch):
    monkeypatch.setattr(changes_module, "PART_ROWS", 64)
    rng = np.random.default_rng(5)
    keys = rng.integers(0, 1 << 63, size=(400, 2), dtype=np.uint64)
    pairs = [(int(a), int(b)) for a, b in keys.tolist()]
    view = MeterView({size: (8, 1 << 40) for size in SIZES}, capacity=300)
    changes = Changes("redis://127.0.0.1:1/0", view, "reg:", on_clocks=lambda _: None)
    changes.n = 0
    for key in pairs[:300]:
        changes.install(key, [], 0, {"state": "CA"}, {})
    await changes._apply(1, _notice(keys, 1.0))
    assert all(_seen(view, k) == {1.0} for k in pairs[:300])

    # notice 2 in parts; between them a reader checks every held meter, and meters not
    # held are read in (as of notice 2: a snapshot taken after it was committed), each
    # evicting the least recently read one
    task = asyncio.ensure_future(changes._apply(2, _notice(keys, 2.0)))
    mixed = installed = 0
    while not task.done():
        seen = [_seen(view, k) for k in list(view.slots)]
        assert all(s in ({1.0}, {2.0}) for s in seen), "a meter seen half updated"
        mixed += {1.0} in seen and {2.0} in seen
        key = pairs[300 + installed % 100]
        if key not in view:
            snapshot = {(u, size): {str(T0 // size * size).encode(): _stored(2.0)}
                        for u, size in BLOCKS}
            changes.install(key, [], 2, {"state": "NY"}, snapshot)
            installed += 1
        await asyncio.sleep(0)
    assert await task
    assert mixed > 0, "no read fell between two parts: the test would prove nothing"
    assert installed > 0
    assert len(view) == 300
    assert all(_seen(view, k) == {2.0} for k in list(view.slots))
