"""Counts in messages read as English: '1 hour', '2 hours', never '1 hours'."""

from __future__ import annotations


def plural(n: int, word: str, many: str | None = None) -> str:
    """'1 file', '2 files', '1,024 events'; `many` for irregular nouns."""
    return f"{n:,} {word if n == 1 else many or word + 's'}"
