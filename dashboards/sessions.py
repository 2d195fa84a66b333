"""Operator sign-in sessions: random ids with an expiry, kept server-side so sign-out revokes.

The cookie holds a random id (256 bits); the server keeps only its SHA-256 and expiry,
so a memory dump or a timing probe of the lookup shows no usable id. Sessions live in
the server's memory: restarting the dashboard signs every operator out.
"""

from __future__ import annotations

import hashlib
import secrets
import time


class Sessions:
    def __init__(self, ttl: float = 12 * 3600.0, most: int = 10_000) -> None:
        self.ttl, self.most = ttl, most
        self._expiry: dict[bytes, float] = {}

    @staticmethod
    def _key(session_id: str) -> bytes:
        return hashlib.sha256(session_id.encode("utf-8", "replace")).digest()

    def create(self) -> str:
        """A new session id, valid for `ttl` seconds (the oldest go beyond `most`)."""
        now = time.time()
        for key in [k for k, t in self._expiry.items() if t <= now]:
            del self._expiry[key]
        while len(self._expiry) >= self.most:
            del self._expiry[next(iter(self._expiry))]
        session_id = secrets.token_urlsafe(32)
        self._expiry[self._key(session_id)] = now + self.ttl
        return session_id

    def valid(self, session_id: str) -> bool:
        expiry = self._expiry.get(self._key(session_id))
        return expiry is not None and expiry > time.time()

    def revoke(self, session_id: str) -> bool:
        """True when there was such a session (sign-out of a live session)."""
        return self._expiry.pop(self._key(session_id), None) is not None

    def __len__(self) -> int:
        return len(self._expiry)
