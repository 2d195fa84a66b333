"""The embedded engine's archive: the same rolls and layout, written to a local folder.

There is no Kafka here, so each utility is one partition (0) and offsets are sequence
numbers per utility that continue from the folder's progress objects: ingesting more
into the same folder appends, it never overwrites. ingest_time is the wall clock.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from auth_kappa.archive import layout
from auth_kappa.archive.local_store import LocalStore
from auth_kappa.archive.rolls import Progress, Roll, Sealed
from auth_kappa.topology.decode import Message


def commit_sync(store: LocalStore, before: Progress, sealed: Sealed) -> Progress:
    """pending ► objects ► done, the archiver's order, for synchronous writers."""
    key = layout.progress_key(sealed.topic, sealed.partition)
    store.put_sync(key, Progress(before.next_offset, before.high,
                                 (sealed.first, sealed.last)).to_bytes())
    for k, data in sealed.objects:
        store.put_sync(k, data)
    after = before.after(sealed)
    store.put_sync(key, after.to_bytes())
    return after


class EmbeddedArchive:
    def __init__(self, root: str | Path, roll_bytes: int = 64 * 1024 * 1024) -> None:
        self.store = LocalStore(root)
        self.roll_bytes = roll_bytes
        self._rolls: dict[str, Roll] = {}
        self._progress: dict[str, Progress] = {}

    def _progress_of(self, utility: str) -> Progress:
        if utility not in self._progress:
            data = self.store.get_sync(layout.progress_key(utility, 0))
            self._progress[utility] = Progress.from_bytes(data) if data else Progress()
        return self._progress[utility]

    def add(self, utility: str, messages: Sequence[Message]) -> None:
        roll = self._rolls.get(utility)
        if roll is None:
            roll = self._rolls[utility] = Roll(utility, utility, 0)
        nxt = roll.offsets[-1] + 1 if len(roll) else self._progress_of(utility).next_offset
        now = int(time.time() * 1000)
        for i, m in enumerate(messages):
            roll.add(m.value, nxt + i, now)
        if roll.nbytes >= self.roll_bytes:
            self._write(utility)

    def _write(self, utility: str) -> None:
        roll = self._rolls.pop(utility, None)
        if roll is not None and len(roll):
            self._progress[utility] = commit_sync(self.store, self._progress_of(utility),
                                                  roll.seal())

    def flush(self) -> None:
        for utility in list(self._rolls):
            self._write(utility)
