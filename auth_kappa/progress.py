"""A progress bar (tqdm) for long runs, shown only when stderr is a terminal.

Piped or redirected output stays clean: no bar, no carriage returns in a log. A bar
appears only once a run has lasted DELAY seconds, so short calls print nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sized
from contextlib import contextmanager
from typing import TextIO, TypeVar

from tqdm import tqdm

DELAY = 1.0   # seconds before a bar appears
T = TypeVar("T")


def on_terminal(stream: TextIO | None = None) -> bool:
    """True when `stream` (default stderr) is an interactive terminal."""
    stream = stream if stream is not None else sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):   # closed or not a real file
        return False


class Bar:
    """Counts work done; draws a tqdm bar on a terminal, does nothing elsewhere."""

    def __init__(self, desc: str, unit: str, total: int | None = None,
                 stream: TextIO | None = None) -> None:
        stream = stream if stream is not None else sys.stderr
        self._bar = tqdm(total=total or None, desc=desc, unit=unit, unit_scale=True,
                         file=stream, delay=DELAY, leave=False, dynamic_ncols=True) \
            if on_terminal(stream) else None

    @property
    def shown(self) -> bool:
        return self._bar is not None

    def set_total(self, total: int) -> None:
        if self._bar is not None:
            self._bar.total = total or None

    def update(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def batches(self, items: Iterable[tuple[str, T]]) -> Iterator[tuple[str, T]]:
        """Pass (utility, messages) batches through, counting their messages."""
        for item in items:
            yield item
            batch = item[1]
            self.update(len(batch) if isinstance(batch, Sized) else 1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


@contextmanager
def progress(desc: str, unit: str, total: int | None = None,
             stream: TextIO | None = None) -> Iterator[Bar]:
    """A Bar closed (and wiped from the terminal) when the block ends, even on errors."""
    bar = Bar(desc, unit, total, stream)
    try:
        yield bar
    finally:
        bar.close()
