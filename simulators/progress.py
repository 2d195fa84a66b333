"""A short progress line on stderr for long runs, and a one-line summary at the end."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Counts messages; prints at most every `every` seconds, only once a run is long."""

    def __init__(self, total: int, enabled: bool = True, every: float = 5.0,
                 stream: TextIO | None = None) -> None:
        self.total = total
        self.enabled = enabled
        self.every = every
        self.stream = stream or sys.stderr
        self.done = 0
        self.started = time.monotonic()
        self._last = self.started

    def add(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and now - self._last >= self.every:
            self._last = now
            pct = 100.0 * self.done / self.total if self.total else 100.0
            print(f"simulate: {self.done:,} of ~{self.total:,} messages ({pct:.0f} %), "
                  f"{self.rate:,.0f}/s", file=self.stream, flush=True)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        return self.done / max(self.elapsed, 1e-9)

    def summary(self, text: str) -> None:
        if self.enabled:
            print(f"simulate: {text} in {self.elapsed:.1f} s ({self.rate:,.0f} messages/s)",
                  file=self.stream, flush=True)
