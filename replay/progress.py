"""A progress bar on stderr: done/total, rate and ETA, redrawn at most a few times a second."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(self, total: int | None, label: str = "replay", enabled: bool = True,
                 stream: TextIO | None = None, every: float = 0.25, width: int = 28) -> None:
        self.total, self.label, self.enabled = total, label, enabled
        self.stream = stream or sys.stderr
        self.every, self.width = every, width
        self.done = 0
        self.started = time.monotonic()
        self._last = 0.0
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    @property
    def rate(self) -> float:
        return self.done / max(time.monotonic() - self.started, 1e-9)

    def add(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and now - self._last >= (self.every if self._tty else 5.0):
            self._last = now
            self._draw(end="\r" if self._tty else "\n")

    def line(self) -> str:
        rate = self.rate
        if self.total:
            frac = min(1.0, self.done / self.total)
            bar = "#" * int(frac * self.width) + "." * (self.width - int(frac * self.width))
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            eta_s = f"{eta:,.0f}s" if eta != float("inf") else "?"
            return (f"{self.label} [{bar}] {frac * 100:5.1f}% {self.done:,}/{self.total:,} "
                    f"events, {rate:,.0f}/s, ETA {eta_s}")
        return f"{self.label} {self.done:,} events, {rate:,.0f}/s"

    def _draw(self, end: str) -> None:
        print(self.line(), end=end, file=self.stream, flush=True)

    def close(self) -> None:
        if self.enabled:
            self._draw(end="\n")
