"""S3 through aiobotocore: one client per store, errors mapped to StoreUnavailable.

botocore's own retries are off (max_attempts 1): the archiver owns the back-off, so an
outage shows up at once as StoreUnavailable and turns into buffering and pausing.
"""

from __future__ import annotations

import asyncio
from typing import Any

from auth_kappa.archive.store import StoreUnavailable


class S3Store:
    def __init__(self, endpoint: str, bucket: str, access_key: str, secret_key: str,
                 region: str, timeout: float = 20.0) -> None:
        self.endpoint, self.bucket = endpoint, bucket
        self.url = f"s3://{bucket}"
        self._args = dict(endpoint_url=endpoint, region_name=region,
                          aws_access_key_id=access_key, aws_secret_access_key=secret_key)
        self._timeout = timeout
        self._client: Any = None
        self._ctx: Any = None
        self._loop: Any = None          # a client belongs to the event loop that made it
        self._locks: dict[Any, asyncio.Lock] = {}

    @classmethod
    def from_config(cls, config: Any) -> S3Store:
        return cls(config.s3_endpoint, config.s3_bucket, config.s3_access_key,
                   config.s3_secret_key, config.s3_region)

    async def _get_client(self) -> Any:
        loop = asyncio.get_running_loop()
        async with self._locks.setdefault(loop, asyncio.Lock()):
            if self._client is None or self._loop is not loop:
                self._loop = loop
                from aiobotocore.config import AioConfig
                from aiobotocore.session import get_session

                cfg = AioConfig(connect_timeout=3, read_timeout=self._timeout,
                                retries={"max_attempts": 1}, s3={"addressing_style": "path"},
                                max_pool_connections=32)
                self._ctx = get_session().create_client("s3", config=cfg, **self._args)
                self._client = await self._ctx.__aenter__()
            return self._client

    async def _call(self, op: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        client = await self._get_client()
        try:
            return await getattr(client, op)(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise KeyError(kwargs.get("Key")) from None
            if code in ("NoSuchBucket",):
                raise StoreUnavailable(f"bucket {self.bucket} does not exist at "
                                       f"{self.endpoint}") from None
            if code.startswith("5") or code in ("SlowDown", "ServiceUnavailable",
                                                "InternalError", "RequestTimeout"):
                raise StoreUnavailable(f"S3 {op}: {code}") from None
            raise
        except (TimeoutError, BotoCoreError, OSError) as exc:
            raise StoreUnavailable(f"S3 at {self.endpoint}: {_reason(exc)}") from None

    async def put(self, key: str, data: bytes) -> None:
        await self._call("put_object", Key=key, Body=data)

    async def get(self, key: str) -> bytes | None:
        try:
            resp = await self._call("get_object", Key=key)
        except KeyError:
            return None
        try:
            async with resp["Body"] as body:
                return await body.read()
        except (TimeoutError, OSError) as exc:
            raise StoreUnavailable(f"S3 read of {key}: {exc}") from None

    async def tail(self, key: str, n: int) -> bytes:
        """The last n bytes (a Parquet footer) without fetching the object."""
        resp = await self._call("get_object", Key=key, Range=f"bytes=-{n}")
        async with resp["Body"] as body:
            return await body.read()

    async def list(self, prefix: str) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Prefix": prefix, "MaxKeys": 1000}
            if token:
                kwargs["ContinuationToken"] = token
            resp = await self._call("list_objects_v2", **kwargs)
            out += [(o["Key"], int(o["Size"])) for o in resp.get("Contents", [])]
            if not resp.get("IsTruncated"):
                return sorted(out)
            token = resp["NextContinuationToken"]

    async def delete(self, keys: list[str]) -> None:
        for lo in range(0, len(keys), 1000):
            await self._call("delete_objects",
                             Delete={"Objects": [{"Key": k} for k in keys[lo:lo + 1000]]})

    async def close(self) -> None:
        if self._ctx is not None and self._loop is asyncio.get_running_loop():
            await self._ctx.__aexit__(None, None, None)
        self._client = self._ctx = self._loop = None


def _reason(exc: BaseException) -> str:
    """A short cause: not the request URL botocore puts in its message (cut mid-URL)."""
    from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError

    if isinstance(exc, ConnectTimeoutError | TimeoutError):
        return "timed out"
    if isinstance(exc, EndpointConnectionError):
        return "cannot connect"
    return f"{type(exc).__name__}: {str(exc)[:120]}"
