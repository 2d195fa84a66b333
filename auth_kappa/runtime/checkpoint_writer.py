"""Checkpoint transactions applied on a thread of their own, one at a time, in order.

Python keeps processing on one core while Redis applies the previous checkpoint on the
other. At most one transaction list is in flight: the runtime prepares the next one
meanwhile, and waits only when it is ready to send it.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

from auth_kappa.runtime.commits import Commit
from auth_kappa.state.protocol import WindowStore


class CheckpointWriter:
    def __init__(self, store: WindowStore) -> None:
        self.store = store
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="checkpoint")
        self._inflight: Future | None = None

    def busy(self) -> bool:
        return self._inflight is not None and not self._inflight.done()

    def inflight(self) -> Future | None:
        """The transactions in flight, for a caller that waits without blocking."""
        return self._inflight

    def submit(self, todo: list[Commit]) -> None:
        """Send the next transactions; the previous ones must have been waited for."""
        assert self._inflight is None, "wait() for the previous checkpoint first"
        self._inflight = self._pool.submit(self._apply, todo)

    def wait(self) -> int:
        """Windows written by the transactions in flight; their error is raised here."""
        inflight, self._inflight = self._inflight, None
        return inflight.result() if inflight is not None else 0

    def discard(self) -> None:
        """Stop waiting for what is in flight: it lands, or the next claim refuses it."""
        self._inflight = None

    def _apply(self, todo: list[Commit]) -> int:
        return sum(c.apply(self.store) for c in todo)
