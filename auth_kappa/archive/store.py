"""What the archiver and replay need from object storage: put, get, list. S3 or a folder."""

from __future__ import annotations

from typing import Protocol


class StoreUnavailable(ConnectionError):
    """The object store did not answer (outage): the caller backs off and retries."""


class ObjectStore(Protocol):
    """Async object storage; keys are '/'-separated paths inside one bucket or folder."""

    url: str

    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is no such key."""
        ...

    async def list(self, prefix: str) -> list[tuple[str, int]]:
        """(key, size) of every object under prefix, sorted by key."""
        ...

    async def tail(self, key: str, n: int) -> bytes:
        """The object's last n bytes (Parquet footers for plans)."""
        ...

    async def close(self) -> None: ...
