"""Peer: Apache Flink (the original's engine) via PyFlink SQL, 1-minute TUMBLE per meter.

Run as its SQL users run a job from Python: one `python` process whose local Flink
(a MiniCluster in the JVM PyFlink starts) runs the statement set:

  BENCH_PREFIX=P- BENCH_GROUP=G BENCH_OUT=T BENCH_KAFKA=host:port BENCH_FLINK_JAR=jar \\
      .venv-peers/flink/bin/python benchmarks/peers/flink_tumbling.py

Per utility topic: a Kafka SQL table (format csv, the seed columns) with event time
TO_TIMESTAMP_LTZ(end_ts) and WATERMARK ts - 5 s, then `TUMBLE(... INTERVAL '1' MINUTE)`
GROUP BY window and service_id (COUNT, SUM) inserted into a Kafka table (format json).
Flink's defaults otherwise: local parallelism = the machine's cores, no checkpoints,
at-least-once sink. Settings that differ, and why:
- properties.enable.auto.commit = true, auto.commit.interval.ms = 1000: without
  checkpoints Flink commits no offsets, and the benchmark reads progress from them;
- table.local-time-zone = UTC, so window starts come out as epoch seconds;
- the watermark's 5 s bound (one heartbeat) is the query's choice, not a default.
Frames (Arrow IPC) are not run: Flink SQL has no Arrow IPC format.
"""

from __future__ import annotations

import os

from pyflink.table import EnvironmentSettings, TableEnvironment

UTILITIES = ("electricity", "gas", "water")


def source_ddl(utility: str, prefix: str, group: str, kafka: str) -> str:
    return f"""
        CREATE TABLE src_{utility} (
            service_id STRING, user_name STRING, `type` STRING, start_ts BIGINT,
            state STRING, consumption DOUBLE, end_ts BIGINT,
            ts AS TO_TIMESTAMP_LTZ(end_ts, 0),
            WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
        ) WITH (
            'connector' = 'kafka', 'topic' = '{prefix}{utility}',
            'properties.bootstrap.servers' = '{kafka}', 'properties.group.id' = '{group}',
            'properties.enable.auto.commit' = 'true',
            'properties.auto.commit.interval.ms' = '1000',
            'scan.startup.mode' = 'earliest-offset', 'format' = 'csv'
        )"""


def sink_ddl(topic: str, kafka: str) -> str:
    return f"""
        CREATE TABLE windows (
            utility STRING, service_id STRING, `start` BIGINT, `count` BIGINT, `sum` DOUBLE
        ) WITH (
            'connector' = 'kafka', 'topic' = '{topic}',
            'properties.bootstrap.servers' = '{kafka}', 'format' = 'json'
        )"""


def window_query(utility: str) -> str:
    return f"""
        INSERT INTO windows
        SELECT '{utility}', service_id,
               CAST(TIMESTAMPDIFF(SECOND, TIMESTAMP '1970-01-01 00:00:00', window_start)
                    AS BIGINT),
               COUNT(*), SUM(consumption)
        FROM TABLE(TUMBLE(TABLE src_{utility}, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
        GROUP BY window_start, window_end, service_id"""


def main() -> None:
    env = os.environ
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    conf = t_env.get_config()
    conf.set("pipeline.jars", "file://" + env["BENCH_FLINK_JAR"])
    conf.set("table.local-time-zone", "UTC")
    for utility in UTILITIES:
        t_env.execute_sql(source_ddl(utility, env["BENCH_PREFIX"], env["BENCH_GROUP"],
                                     env["BENCH_KAFKA"]))
    t_env.execute_sql(sink_ddl(env["BENCH_OUT"], env["BENCH_KAFKA"]))
    statements = t_env.create_statement_set()
    for utility in UTILITIES:
        statements.add_insert_sql(window_query(utility))
    statements.execute().wait()


if __name__ == "__main__":
    main()
