"""Watermark rules: min over partitions, idleness needs an empty backlog, never moves back."""

import math

from auth_kappa.topology.watermark import NO_WATERMARK, Watermark


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


def test_monotonic_and_end_of_input():
    clock = Clock()
    wm = Watermark(idle_timeout=30, clock=clock)
    wm.assign([0, 1])
    wm.observe(0, 1000)
    wm.observe(1, 1000)
    assert wm.current() == 1000
    wm.assign([2])           # a new partition appears with nothing yet
    wm.observe(2, 100)       # and older data: the watermark does not go back
    assert wm.current() == 1000
    wm.end_of_input()
    assert wm.current() == math.inf
