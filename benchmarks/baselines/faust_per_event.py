"""Baseline: a textbook Faust agent, one reading at a time, one Redis round trip each.

  BENCH_PREFIX=p- BENCH_GROUP=g BENCH_NAMESPACE=ns \\
      .venv/bin/python -m faust -A benchmarks.baselines.faust_per_event worker -l warn --without-web

For every message of the electricity/gas/water topics: parse the CSV (or, for a frame,
its rows), compute the 1-minute window from end_ts, and per reading add the value to
the meter's window and to the state's window (HINCRBYFLOAT) and count it (HINCRBY).
The three commands go in one pipeline per reading (one round trip, kinder than three
awaits). No dedup, no watermark, no lateness, no offsets stored with the state: the
shape a first Faust app has. Keys (prefix bench:<ns>:):
  m:{<sid>}:<utility>:60  <window_start> -> sum
  s:<utility>:60          <state>:<window_start> -> sum
  c:<utility>:60          <state>:<window_start> -> count
"""

from __future__ import annotations

import os
from pathlib import Path

import faust
import pyarrow as pa
import pyarrow.ipc as ipc
import redis.asyncio as aioredis

PREFIX = os.environ.get("BENCH_PREFIX", "")
GROUP = os.environ.get("BENCH_GROUP", "bench-faust")
NAMESPACE = os.environ.get("BENCH_NAMESPACE", GROUP)
KAFKA = os.environ.get("AUTH_KAFKA", "127.0.0.1:9092")
REDIS_URL = os.environ.get("AUTH_REDIS_URL", "redis://127.0.0.1:6379/0")
DATA = Path(os.environ.get("BENCH_DATADIR", ".cache/bench-faust")).resolve()
UTILITIES = ("electricity", "gas", "water")
MAGIC = b"\xff\xff\xff\xff"
KEYS = f"bench:{NAMESPACE}:"
DATA.mkdir(parents=True, exist_ok=True)  # Faust makes <id>-data dirs inside

app = faust.App(GROUP, broker=f"kafka://{KAFKA}", store="memory://", web_enabled=False,
                datadir=str(DATA / "{conf.id}"), topic_partitions=4,
                consumer_auto_offset_reset="earliest")
topics = app.topic(*(PREFIX + u for u in UTILITIES), key_type=bytes, value_type=bytes,
                   key_serializer="raw", value_serializer="raw")
redis = aioredis.Redis.from_url(REDIS_URL)


def readings(value: bytes) -> list[tuple[str, str, float, int]]:
    """(service_id, state, consumption, end_ts) of a CSV message or of a frame's rows."""
    if value[:4] == MAGIC:
        t = ipc.open_stream(pa.py_buffer(value)).read_all()
        return list(zip(*(t.column(c).to_pylist()
                          for c in ("service_id", "state", "consumption", "end_ts")),
                        strict=True))
    sid, _name, _type, _start, state, cons, end = value.decode().split(",")
    return [(sid, state, float(cons), int(end))]


@app.agent(topics)
async def aggregate(stream):
    async for event in stream.events():
        utility = event.message.topic[len(PREFIX):]
        try:
            rows = readings(event.value)
        except (ValueError, pa.ArrowInvalid):
            continue  # a first app drops what it cannot parse
        for sid, state, cons, end in rows:
            window = end // 60 * 60
            pipe = redis.pipeline(transaction=False)
            pipe.hincrbyfloat(f"{KEYS}m:{{{sid}}}:{utility}:60", window, cons)
            pipe.hincrbyfloat(f"{KEYS}s:{utility}:60", f"{state}:{window}", cons)
            pipe.hincrby(f"{KEYS}c:{utility}:60", f"{state}:{window}", 1)
            await pipe.execute()
