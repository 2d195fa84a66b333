"""Event-time rules: a clock per partition, lateness in partition order, idleness needs an
empty backlog, the utility watermark is the lowest clock held."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from auth_kappa.topology.watermark import NO_WATERMARK, Watermark, late_mask


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_lowest_of_partition_highs_and_unheard_partition_holds_back():
    clock = Clock()
    wm = Watermark(idle_timeout=30, clock=clock)
    wm.assign([0, 1])
    wm.observe(0, 1000)
    assert wm.current() == NO_WATERMARK  # partition 1 not heard from yet
    wm.observe(1, 900)
    assert wm.current() == 900
    wm.observe(1, 1200)
    assert wm.current() == 1000


def test_idle_partition_released_only_when_caught_up():
    clock = Clock()
    backlog = {1: True}
    wm = Watermark(idle_timeout=30, clock=clock, caught_up=lambda p: not backlog.get(p, False))
    wm.assign([0, 1])
    wm.observe(0, 1000)
    wm.observe(1, 500)
    clock.t = 10
    wm.observe(0, 2000)
    clock.t = 45  # partition 1 silent for 45 s, but it still has unread messages
    assert wm.current() == 500
    backlog[1] = False
    assert wm.current() == 2000  # now it is truly idle: it no longer holds the rest back


def test_monotonic_while_assigned_and_recomputed_on_assignment():
    clock = Clock()
    wm = Watermark(idle_timeout=30, clock=clock)
    wm.assign([0, 1])
    wm.observe(0, 1000)
    wm.observe(1, 1000)
    assert wm.current() == 1000
    wm.observe(1, 900)       # older data in a partition: its clock does not go back
    assert wm.current() == 1000 and wm.high(1) == 1000
    wm.assign([2])           # a partition taken over from a lagging owner
    wm.restore(2, 100)
    assert wm.current() == 100          # the utility's watermark is over what we hold now
    assert wm.high(0) == 1000 and wm.high(2) == 100   # each partition keeps its own clock
    wm.end_of_input()
    assert wm.current() == math.inf


def _late_one_by_one(seed: dict[int, float], parts, ends, window=60, grace=30):
    """Brute force: each reading decided against its partition's max end_ts before it."""
    clock, out = dict(seed), []
    for p, e in zip(parts, ends, strict=True):
        high = clock.get(p, -math.inf)
        out.append(e // window * window + window + grace <= high)
        clock[p] = max(high, e)
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 1200)), max_size=80),
       st.lists(st.integers(1, 80), max_size=10), st.integers(-1, 600))
def test_lateness_is_per_partition_and_independent_of_batching(readings, cuts, start):
    parts = np.array([p for p, _ in readings], np.int32)
    ends = np.array([e for _, e in readings], np.int64)
    seed = {0: float(start)} if start >= 0 else {}
    expected = _late_one_by_one(seed, parts.tolist(), ends.tolist())
    wm = Watermark(idle_timeout=math.inf, clock=Clock())
    wm.assign(range(4))
    for p, h in seed.items():
        wm.restore(p, h)
    got: list[bool] = []
    bounds = sorted({0, len(ends), *[c for c in cuts if c < len(ends)]})
    for lo, hi in zip(bounds, bounds[1:], strict=False):   # any batching: same answer
        got += late_mask(wm, parts[lo:hi], ends[lo:hi], 60, 30).tolist()
        for p in np.unique(parts[lo:hi]):
            wm.observe(int(p), ends[lo:hi][parts[lo:hi] == p].max())
    assert got == expected


def test_partition_taken_over_from_a_lagging_owner_is_not_late():
    """Defect 2: gas:0 at 12:10 here, gas:1 committed at 12:00 by its lagging owner."""
    t0 = 1_700_000_000 // 3600 * 3600
    wm = Watermark(idle_timeout=math.inf, clock=Clock())
    wm.assign([0])
    wm.observe(0, t0 + 600)
    wm.assign([1])
    wm.restore(1, t0)
    backlog = np.arange(t0 + 5, t0 + 600, 5)
    late = late_mask(wm, np.ones(len(backlog), np.int32), backlog, 60, 30)
    assert not late.any()
    # while on gas:0 the same times are late (its own clock passed them)
    assert late_mask(wm, np.zeros(1, np.int32), np.array([t0 + 5]), 60, 30).all()


def test_no_clock_passes_the_wall_clock_plus_the_allowed_skew():
    """Defect 6: a record whose own timestamp is 20 h ahead (a producer's clock) gets its
    reading past the `future` check; the partition's clock still stops at now + 15 min,
    so the meter's later readings are not all late."""
    from auth_kappa.topology.decode import Message
    from auth_kappa.topology.processor import Topology
    from auth_kappa.topology.validate import Rules
    from auth_kappa.topology.windows import WindowSpec

    now = 1_772_409_600.0
    topo = Topology([WindowSpec.parse("1m")], grace=30, idle_timeout=math.inf,
                    rules=Rules(clock=lambda: now))
    topo.assign("gas", [0])
    sid = "00000000-0000-4000-8000-000000000001"

    def msg(end: float, offset: int, ts: float) -> Message:
        return Message(f"{sid},A,household,{int(end) - 5},WA,1.0,{int(end)}".encode(), 0,
                       offset, ts)

    ahead = now + 20 * 3600
    r = topo.process("gas", [msg(ahead, 0, ahead)])
    assert r.accepted == 1 and topo.watermarks["gas"].high(0) == now + 900
    r = topo.process("gas", [msg(now + 840, 1, now)])   # 14 min ahead of the wall clock:
    assert r.accepted == 1 and len(r.late) == 0          # on time (was late by 20 h)


def test_an_idle_partition_lets_the_watermark_go_but_keeps_its_own_clock():
    """A partition idle and caught up (empty so far, or its highwater not yet refreshed)
    stops holding the watermark back, but its readings, when they come, are judged by its
    own clock: idleness never makes a reading late."""
    clock = Clock()
    wm = Watermark(idle_timeout=30, clock=clock)
    wm.assign([0, 1])
    wm.observe(0, 1000)
    clock.t = 40
    assert wm.current() == 1000
    assert wm.high(1) == NO_WATERMARK and wm.mark(1) == 1000
    assert not late_mask(wm, np.array([1], np.int32), np.array([500]), 60, 30).any()


def test_highs_of_an_array_is_high_of_each_partition():
    wm = Watermark()
    wm.observe(2, 100.0)
    wm.observe(5, 40.0)
    parts = np.array([5, -1, 2, 7, 2, 0, 5], np.int32)
    assert wm.highs(parts).tolist() == [wm.high(int(p)) for p in parts]
    assert wm.highs(np.zeros(0, np.int32)).tolist() == []
