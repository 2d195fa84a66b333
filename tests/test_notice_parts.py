"""A big change notice goes into the dashboard's view in parts, requests served between
them (dashboards/changes.py): every meter moves from notice n-1 to n whole, never with one
window size new and another old, and a reset between parts stops the notice."""

from __future__ import annotations

import asyncio
import random
import uuid

import numpy as np

from auth_kappa.state import codec
from auth_kappa.topology.keys import uuid_keys
from dashboards.changes import Changes
from dashboards.meter_view import MeterView

T0 = 1_700_000_000 // 3600 * 3600
METERS = 200
READS = [("electricity", 60, [T0]), ("electricity", 3600, [T0])]


def _notice(keys: np.ndarray, value: float, rnd: random.Random) -> dict[bytes, bytes]:
    """Both window sizes of every meter set to `value`, each block in its own order."""
    fields = {}
    for size in (60, 3600):
        order = list(range(len(keys)))
        rnd.shuffle(order)
        rec = np.zeros(len(keys), codec.CHANGE)
        rec["k0"], rec["k1"] = keys[order, 0], keys[order, 1]
        rec["ws"] = T0
        rec["val"]["sum"], rec["val"]["count"] = value, 1
        fields[f"m:electricity:{size}".encode()] = rec.tobytes()
    return fields


def _sums(view: MeterView, keys: list[tuple[int, int]]) -> list[tuple[float, float]]:
    out = []
    for key in keys:
        _, (small, big) = view.answer(key, READS)
        out.append((float(small["sum"][0]), float(big["sum"][0])))
    return out


async def test_a_notice_in_parts_moves_each_meter_whole() -> None:
    rnd = random.Random(5)
    sids = np.array([str(uuid.UUID(int=rnd.getrandbits(128), version=4)) for _ in range(METERS)],
                    dtype="S36")
    keys, _ = uuid_keys(sids)
    held = [(int(a), int(b)) for a, b in keys.tolist()]
    view = MeterView({60: (4, 1 << 40), 3600: (4, 1 << 40)}, METERS)
    for key in held:
        view.install(key, 0, None, {})
    changes = Changes("redis://127.0.0.1:1/0", view, "unused:", lambda clocks: None)
    changes.part_rows = 16
    assert await changes._apply(1, _notice(keys, 1.0, rnd))
    assert set(_sums(view, held)) == {(1.0, 1.0)}

    apply = asyncio.ensure_future(changes._apply(2, _notice(keys, 2.0, rnd)))
    midway = 0
    while not apply.done():
        sums = _sums(view, held)
        assert all(a == b for a, b in sums), "a meter half in notice 1, half in 2"
        midway += len({a for a, _ in sums}) == 2   # some meters moved, others not yet
        await asyncio.sleep(0)
    assert apply.result()
    assert midway >= 4 and changes.parts >= 8, (midway, changes.parts)
    assert set(_sums(view, held)) == {(2.0, 2.0)}

    # a reset between parts (the view starts over): the rest of the notice is not applied
    apply = asyncio.ensure_future(changes._apply(3, _notice(keys, 3.0, rnd)))
    while (3.0, 3.0) not in set(_sums(view, held)):   # until its first part is in
        assert not apply.done()
        await asyncio.sleep(0)
    changes.epoch += 1
    assert await apply is False
    assert (3.0, 3.0) in set(_sums(view, held)) and (2.0, 2.0) in set(_sums(view, held))
