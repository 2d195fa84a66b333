"""Archive test helpers: a private bucket per test, and the whole archive read back."""

from __future__ import annotations

import asyncio

import pandas as pd

from auth_kappa.archive.parquet_io import from_parquet
from auth_kappa.archive.s3_store import S3Store
from auth_kappa.config import Config
from auth_kappa.stack.s3admin import ensure_bucket, s3_client


def make_bucket(config: Config) -> None:
    c = config
    ensure_bucket(s3_client(c.s3_endpoint, c.s3_access_key, c.s3_secret_key, c.s3_region),
                  c.s3_bucket)


def drop_bucket(config: Config) -> None:
    c = config
    client = s3_client(c.s3_endpoint, c.s3_access_key, c.s3_secret_key, c.s3_region)
    try:
        while True:
            got = client.list_objects_v2(Bucket=c.s3_bucket, MaxKeys=1000).get("Contents", [])
            if not got:
                break
            client.delete_objects(Bucket=c.s3_bucket,
                                  Delete={"Objects": [{"Key": o["Key"]} for o in got]})
        client.delete_bucket(Bucket=c.s3_bucket)
    except Exception:  # noqa: BLE001 - best-effort cleanup of a private bucket
        pass


def read_all(store, prefix: str) -> pd.DataFrame:
    """Every Parquet object under prefix (archive/ or quarantine/) as one frame, with its key."""
    async def go():
        keys = [k for k, _ in await store.list(prefix) if k.endswith(".parquet")]
        parts = []
        for k in keys:
            df = from_parquet(await store.get(k)).to_pandas()
            df["key"] = k
            parts.append(df)
        await store.close()
        if parts:
            return pd.concat(parts, ignore_index=True)
        from auth_kappa.archive.records import ARCHIVE_SCHEMA, QUARANTINE_SCHEMA

        schema = QUARANTINE_SCHEMA if prefix.startswith("quarantine") else ARCHIVE_SCHEMA
        return schema.empty_table().to_pandas().assign(key=pd.Series([], dtype=object))
    return asyncio.run(go())


def s3(config: Config) -> S3Store:
    return S3Store.from_config(config)


def end_offsets(config: Config) -> dict[str, int]:
    """"<topic>:<partition>" -> high watermark, for every source partition."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": config.kafka, "group.id": "offsets-probe",
                  "enable.auto.commit": False})
    try:
        meta = c.list_topics(timeout=10).topics
        out = {}
        for topic in config.source_topics:
            for p in meta[topic].partitions:
                out[f"{topic}:{p}"] = c.get_watermark_offsets(TopicPartition(topic, p),
                                                              timeout=10)[1]
        return out
    finally:
        c.close()


def progress(store) -> dict[str, object]:
    """"<topic>:<partition>" -> Progress from the archive's progress objects."""
    from auth_kappa.archive import layout
    from auth_kappa.archive.rolls import Progress

    async def go():
        out = {}
        for key, _ in await store.list(f"{layout.PROGRESS}/"):
            topic, part = key[len(layout.PROGRESS) + 1:].rsplit("/", 1)
            out[f"{topic}:{part.removesuffix('.json')}"] = Progress.from_bytes(
                await store.get(key))
        await store.close()
        return out
    return asyncio.run(go())


def wait_archived(config: Config, timeout: float = 120, log=lambda: "") -> dict[str, int]:
    """Until every partition's archive progress reaches Kafka's end; returns the ends."""
    import time

    ends = end_offsets(config)
    deadline = time.monotonic() + timeout
    got: dict = {}
    while time.monotonic() < deadline:
        got = {k: p.next_offset for k, p in progress(s3(config)).items()}
        if all(got.get(k, 0) >= v for k, v in ends.items() if v):
            return ends
        time.sleep(0.5)
    raise AssertionError(f"archive not complete: {got} != {ends}\n{log()}")


def valid_lines(sim_dir, utility: str) -> tuple[list[bytes], list[bytes]]:
    """(valid, malformed) lines of a simulator CSV, split by the ground truth's positions."""
    import pyarrow.parquet as pq

    lines = [ln for ln in (sim_dir / f"{utility}.csv").read_bytes().split(b"\n") if ln]
    gt = pq.read_table(sim_dir / "ground_truth.parquet").to_pandas()
    bad = set(gt[(gt["kind"] == "malformed") & (gt["utility"] == utility)]["position"])
    return ([ln for i, ln in enumerate(lines) if i not in bad],
            [ln for i, ln in enumerate(lines) if i in bad])
