"""The archive in a local folder (embedded engine, `simulate --to archive DIR`, tests)."""

from __future__ import annotations

import os
from pathlib import Path


class LocalStore:
    """Same keys as S3, as files under root; writes go through a temp file and rename."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.url = str(self.root)

    def put_sync(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # a reader never sees half an object

    def get_sync(self, key: str) -> bytes | None:
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            return None

    def list_sync(self, prefix: str) -> list[tuple[str, int]]:
        base = self.root / prefix.rstrip("/") if prefix else self.root
        start = base if base.is_dir() else base.parent
        if not start.exists():
            return []
        out = []
        for dirpath, _, files in os.walk(start):
            for f in files:
                if f.startswith("."):
                    continue
                p = Path(dirpath) / f
                key = p.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    out.append((key, p.stat().st_size))
        return sorted(out)

    async def tail(self, key: str, n: int) -> bytes:
        with open(self.root / key, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - n))
            return fh.read()

    async def put(self, key: str, data: bytes) -> None:
        self.put_sync(key, data)

    async def get(self, key: str) -> bytes | None:
        return self.get_sync(key)

    async def list(self, prefix: str) -> list[tuple[str, int]]:
        return self.list_sync(prefix)

    async def close(self) -> None:
        return None
