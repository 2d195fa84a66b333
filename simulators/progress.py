"""Progress on stderr for long runs (a tqdm bar on a terminal, else a short line every few
seconds), and a one-line summary at the end."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from auth_kappa.progress import Bar, on_terminal


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
        self._bar: Bar | None = None

    def add(self, n: int) -> None:
        self.done += n
        if self.enabled and on_terminal(self.stream):
            if self._bar is None:
                self._bar = Bar("simulate", "messages", self.total, self.stream)
            self._bar.update(n)
            return
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
        if self._bar is not None:
            self._bar.close()
        if self.enabled:
            print(f"simulate: {text} in {self.elapsed:.1f} s ({self.rate:,.0f} messages/s)",
                  file=self.stream, flush=True)
