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
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return asyncio.run(go())


def s3(config: Config) -> S3Store:
    return S3Store.from_config(config)
