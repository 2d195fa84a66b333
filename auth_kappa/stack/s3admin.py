"""Synchronous S3 calls the stack needs (bucket creation); the data path uses aiobotocore."""

from __future__ import annotations

from typing import Any


def s3_client(endpoint: str, access_key: str, secret_key: str, region: str,
              timeout: float = 10) -> Any:
    import botocore.session
    from botocore.config import Config as BotoConfig

    session = botocore.session.get_session()
    return session.create_client(
        "s3", endpoint_url=endpoint, region_name=region,
        aws_access_key_id=access_key, aws_secret_access_key=secret_key,
        config=BotoConfig(connect_timeout=timeout, read_timeout=timeout,
                          retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )


def ensure_bucket(client: Any, bucket: str) -> bool:
    """Create the bucket if missing; True if it was created now."""
    try:
        client.create_bucket(Bucket=bucket)
        return True
    except client.exceptions.BucketAlreadyOwnedByYou:
        return False
    except client.exceptions.BucketAlreadyExists:
        return False
