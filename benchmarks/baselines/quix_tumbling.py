"""Baseline: Quix Streams doing the 1-minute tumbling-window sum per meter (its idiom).

Runs in its own venv (.venv-bench; quixstreams 3.x pins confluent-kafka < 2.13, the
project pins 2.16), started by benchmarks/bench_worker.py:

  .venv-bench/bin/python benchmarks/baselines/quix_tumbling.py --prefix P --group G \\
      --namespace NS --state-dir DIR [--frames]

Per utility topic: `app.dataframe(topic)` ► parse ► `.tumbling_window(60 s)`
`.agg(sum, count).final()` keyed by the message key (= service_id), event time = end_ts,
final windows written to Redis with Quix's RedisSink (key qx:<ns>:<utility>:<sid>:<start>).
Frames (key None, many meters per message) need the Quix way of re-keying: expand the
rows, set the event time per row, `group_by("service_id")` (a repartition topic), then
the same window. Quix defaults otherwise: at-least-once, RocksDB state with changelog
topics, commit every second (its default is 5 s; 1 s matches our worker's checkpoint).
Bad input is skipped (None), which the benchmark's data does not contain.
"""

from __future__ import annotations

import argparse
import json
import logging
from datetime import timedelta
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.ipc as ipc
from quixstreams import Application
from quixstreams.dataframe.windows import Count, Sum
from quixstreams.sinks.community.redis import RedisSink

UTILITIES = ("electricity", "gas", "water")
MAGIC = b"\xff\xff\xff\xff"


def parse_csv(value: bytes) -> dict | None:
    try:
        sid, _name, _type, _start, state, cons, end = value.decode().split(",")
        return {"service_id": sid, "state": state, "consumption": float(cons),
                "end_ts": int(end)}
    except ValueError:
        return None


def csv_event_time(value: bytes, headers, timestamp: float, timestamp_type) -> int:
    """Event time (ms) = end_ts, the 7th CSV field; Kafka's timestamp when unreadable."""
    try:
        return int(value[value.rindex(b",") + 1:]) * 1000
    except ValueError:
        return int(timestamp)


def frame_rows(value: bytes) -> list[dict]:
    if value[:4] != MAGIC:
        row = parse_csv(value)
        return [row] if row else []
    table = ipc.open_stream(pa.py_buffer(value)).read_all()
    return table.select(["service_id", "state", "consumption", "end_ts"]).to_pylist()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--prefix", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--namespace", required=True)
    p.add_argument("--state-dir", required=True)
    p.add_argument("--kafka", default="127.0.0.1:9092")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--frames", action="store_true")
    args = p.parse_args()
    redis = urlparse(args.redis_url)
    app = Application(broker_address=args.kafka, consumer_group=args.group,
                      auto_offset_reset="earliest", commit_interval=1.0,
                      state_dir=args.state_dir, loglevel="WARNING")
    for utility in UTILITIES:
        if args.frames:
            topic = app.topic(args.prefix + utility, value_deserializer="bytes",
                              key_deserializer="bytes")
            sdf = app.dataframe(topic)
            sdf = sdf.apply(frame_rows, expand=True)
            sdf = sdf.set_timestamp(lambda value, key, ts, headers: value["end_ts"] * 1000)
            sdf = sdf.group_by("service_id")
        else:
            topic = app.topic(args.prefix + utility, value_deserializer="bytes",
                              key_deserializer="str", timestamp_extractor=csv_event_time)
            sdf = app.dataframe(topic)
            sdf = sdf.apply(parse_csv).filter(lambda row: row is not None)
        sdf = sdf.tumbling_window(timedelta(minutes=1)).agg(
            sum=Sum("consumption"), count=Count()).final()

        def redis_key(key, value, utility=utility) -> str:
            sid = key.decode() if isinstance(key, bytes) else key
            return f"qx:{args.namespace}:{utility}:{sid}:{value['start'] // 1000}"

        sdf.sink(RedisSink(host=redis.hostname or "127.0.0.1", port=redis.port or 6379,
                           db=int((redis.path or "/0").lstrip("/") or 0),
                           key_serializer=redis_key, value_serializer=json.dumps))
    logging.getLogger("quixstreams").setLevel(logging.WARNING)
    app.run()


if __name__ == "__main__":
    main()
