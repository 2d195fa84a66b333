"""Where an archive lives: the configured S3 bucket, or a local folder (a user's
`--archive DIR`, the embedded demo). Kept apart from the store protocol so the protocol
imports no store."""

from __future__ import annotations

from auth_kappa.archive.store import ObjectStore


def open_store(target: str | None, config: object) -> ObjectStore:
    """'s3' (or None) -> the configured bucket; anything else is a local folder."""
    if target in (None, "", "s3"):
        from auth_kappa.archive.s3_store import S3Store

        return S3Store.from_config(config)
    from auth_kappa.archive.local_store import LocalStore

    return LocalStore(target)
