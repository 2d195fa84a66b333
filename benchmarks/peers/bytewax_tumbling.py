"""Peer: Bytewax (Rust core, Python API) doing the 1-minute tumbling windows per meter.

Run as its users run a dataflow, one process, one worker, no recovery (its defaults):

  BENCH_PREFIX=P- BENCH_GROUP=G BENCH_OUT=T BENCH_KAFKA=host:port [BENCH_FRAMES=1] \\
      .venv-peers/bytewax/bin/python -m bytewax.run benchmarks.peers.bytewax_tumbling:get_flow

Per utility topic: Kafka input (`bytewax.connectors.kafka.operators.input`), parse,
`key_on` service_id, `fold_window` (count, sum) with an EventClock on end_ts and a
TumblingWindower of 60 s aligned to the epoch; closed windows as JSON to the Kafka topic
BENCH_OUT. Settings that differ from Bytewax's defaults, and why:
- the Kafka source joins consumer group G and auto-commits every second (Bytewax's source
  commits nothing; it keeps offsets in its recovery store): the benchmark reads progress
  from the committed offsets, as it does for Quix;
- the clock's system time stands still (now_getter returns the epoch; default: the wall
  clock) and wait_for_system_duration (no default) = 0: its watermark per key is then the
  meter's newest end_ts, so a meter's window closes at its first reading past the window,
  as in the Quix baseline. With the wall clock the watermark also moves with system time:
  replaying a backlog slower than real time, a meter's readings came in later than
  5 s + the wait apart and were dropped as late (20,000 meters at ~8k readings/s, wait
  10 s: 4-6 of each first window's 11 readings kept);
- to_system_utc returns None (default: the close time itself): no wake-ups by system time.
  By default each key is woken at its windows' close time, months before the wall clock
  here, so every key was woken on every batch (2,571 -> 17,641 readings/s, 20,000 meters
  x 30 s).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import bytewax.operators as op
import bytewax.operators.windowing as win
from bytewax.connectors.kafka import KafkaSinkMessage
from bytewax.connectors.kafka import operators as kop
from bytewax.dataflow import Dataflow

from benchmarks.peers.wire import Reading, parse_csv, readings

UTILITIES = ("electricity", "gas", "water")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def event_time(reading: Reading) -> datetime:
    return datetime.fromtimestamp(reading[2], tz=UTC)


def no_wakeup(_close: datetime) -> None:
    """No system-time wake-up to close a window: see the module's docstring."""
    return None


def frozen_now() -> datetime:
    """System time that stands still: the watermark moves with event time only."""
    return EPOCH


def add(acc: tuple[int, float], reading: Reading) -> tuple[int, float]:
    return acc[0] + 1, acc[1] + reading[1]


def merge(a: tuple[int, float], b: tuple[int, float]) -> tuple[int, float]:
    return a[0] + b[0], a[1] + b[1]


def get_flow() -> Dataflow:
    prefix, group = os.environ["BENCH_PREFIX"], os.environ["BENCH_GROUP"]
    kafka, frames = os.environ["BENCH_KAFKA"], bool(os.environ.get("BENCH_FRAMES"))
    config = {"group.id": group, "enable.auto.commit": "true",
              "auto.commit.interval.ms": "1000"}
    flow = Dataflow("bench_tumbling")
    clock = win.EventClock(event_time, wait_for_system_duration=timedelta(0),
                           now_getter=frozen_now, to_system_utc=no_wakeup)
    windower = win.TumblingWindower(length=timedelta(minutes=1), align_to=EPOCH)
    outs = []
    for utility in UTILITIES:
        src = kop.input(f"in_{utility}", flow, brokers=[kafka], topics=[prefix + utility],
                        add_config=config)
        if frames:
            rows = op.flat_map(f"parse_{utility}", src.oks, lambda m: readings(m.value))
        else:
            rows = op.filter_map(f"parse_{utility}", src.oks, lambda m: parse_csv(m.value))
        keyed = op.key_on(f"key_{utility}", rows, lambda r: r[0])
        closed = win.fold_window(f"win_{utility}", keyed, clock, windower,
                                 lambda: (0, 0.0), add, merge)

        def to_message(item, utility=utility) -> KafkaSinkMessage:
            sid, (window_id, (count, total)) = item
            return KafkaSinkMessage(sid.encode(), json.dumps(
                {"utility": utility, "service_id": sid, "start": window_id * 60,
                 "count": count, "sum": total}).encode())

        outs.append(op.map(f"out_{utility}", closed.down, to_message))
    kop.output("out", op.merge("all", *outs), brokers=[kafka], topic=os.environ["BENCH_OUT"])
    return flow
