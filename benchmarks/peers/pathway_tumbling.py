"""Peer: Pathway (Rust core, Python API) doing the 1-minute tumbling windows per meter.

Run as its users run a pipeline, one process (`pw.run()`, its defaults: one thread, no
persistence, Kafka reader committing a minibatch every 1.5 s):

  BENCH_PREFIX=P- BENCH_GROUP=G BENCH_OUT=T BENCH_KAFKA=host:port [BENCH_FRAMES=1] \\
      .venv-peers/pathway/bin/python benchmarks/peers/pathway_tumbling.py

Per utility topic: `pw.io.kafka.read(format="raw")`, a Python UDF that parses the CSV
line (Pathway's Kafka reader has no CSV format) or expands a frame, then
`windowby(end_ts, window=pw.temporal.tumbling(60), instance=service_id)` with count and
sum, written with `pw.io.kafka.write(format="json")`. Pathway's default window behaviour
keeps every window up to date: each minibatch retracts and re-emits the windows it
changed (the `diff` of each output row), so nothing waits for a watermark. No setting
differs from Pathway's defaults; the benchmark reads its progress from its output.
"""

from __future__ import annotations

import os

import pathway as pw

from benchmarks.peers.wire import parse_csv, readings

UTILITIES = ("electricity", "gas", "water")


@pw.udf(deterministic=True)
def parse_one(data: bytes) -> tuple[str, float, int]:
    row = parse_csv(data)
    if row is None:
        raise ValueError("not a seed reading")
    return row


@pw.udf(deterministic=True)
def parse_frame(data: bytes) -> list[tuple[str, float, int]]:
    return readings(data)


def windows(raw: pw.Table, utility: str, frames: bool) -> pw.Table:
    """1-minute windows per meter of one utility's raw Kafka table (column `data`)."""
    if frames:
        rows = raw.select(r=parse_frame(pw.this.data)).flatten(pw.this.r)
    else:
        rows = raw.select(r=parse_one(pw.this.data))
    rows = rows.select(service_id=pw.this.r[0],
                       consumption=pw.this.r[1], end_ts=pw.this.r[2])
    return rows.windowby(rows.end_ts, window=pw.temporal.tumbling(duration=60, origin=0),
                         instance=rows.service_id).reduce(
        utility=utility, service_id=pw.this._pw_instance, start=pw.this._pw_window_start,
        count=pw.reducers.count(), sum=pw.reducers.sum(pw.this.consumption))


def main() -> None:
    env = os.environ
    settings = {"bootstrap.servers": env["BENCH_KAFKA"], "group.id": env["BENCH_GROUP"],
                "auto.offset.reset": "earliest"}
    frames = bool(env.get("BENCH_FRAMES"))
    outs = [windows(pw.io.kafka.read(settings, topic=env["BENCH_PREFIX"] + u, format="raw"),
                    u, frames) for u in UTILITIES]
    pw.io.kafka.write(pw.Table.concat_reindex(*outs), {"bootstrap.servers": env["BENCH_KAFKA"]},
                      env["BENCH_OUT"], format="json")
    pw.run()


if __name__ == "__main__":
    main()
