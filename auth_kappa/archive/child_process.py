"""The archiver in a child process of the worker, so it has its own core and GIL.

In the worker's event loop the archiver's second read of every message (aiokafka's
protocol, its buffering and sealing) took 10-14 % of the main thread that the stream
needs (py-spy, benchmarks/README.md). It shares nothing else with the stream, so it can
live in its own process: the worker hands it the Config on stdin and restarts it if it
dies. The child dies with the worker: the kernel sends it SIGTERM when the worker goes,
even after kill -9 (PR_SET_PDEATHSIG), and a SIGTERM drains like a graceful stop.
Exactly-once does not depend on any of this: the progress objects do (see the archiver).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import pickle
import signal
import subprocess
import sys
import time

from auth_kappa.archive.archiver import DRAIN_SECONDS, Archiver
from auth_kappa.archive.targets import open_store
from auth_kappa.config import Config

log = logging.getLogger("auth_kappa.archive")
PR_SET_PDEATHSIG = 1
# a graceful stop's budget: the archiver's own drain and its consumer's leave
STOP_SECONDS = DRAIN_SECONDS + 5.0


class ArchiverProcess:
    """The worker's side: start the child, restart it when it exits, stop it on stop."""

    def __init__(self, config: Config, restart_max: float = 30.0) -> None:
        self.config = config
        self.restart_max = restart_max
        self._proc: subprocess.Popen | None = None
        self._stopping = False

    def _start(self) -> subprocess.Popen:
        # from the event loop's thread: PDEATHSIG follows the thread that forked
        proc = subprocess.Popen([sys.executable, "-m", "auth_kappa.archive.child_process",
                                 str(os.getpid()), str(logging.getLogger().getEffectiveLevel())],
                                stdin=subprocess.PIPE)
        assert proc.stdin is not None
        proc.stdin.write(pickle.dumps(self.config))
        proc.stdin.close()
        log.info("archiver: child process %d started", proc.pid)
        return proc

    async def run(self) -> None:
        failures = 0
        while not self._stopping:
            started = time.monotonic()
            self._proc = self._start()
            while self._proc.poll() is None:
                await asyncio.sleep(0.25)
            if self._stopping:
                return
            failures = 0 if time.monotonic() - started > self.restart_max else failures + 1
            delay = min(self.restart_max, 0.5 * 2 ** min(failures, 10))
            log.error("archiver: child process %d exited with %s; restarting in %.1fs "
                      "(Kafka and the progress objects keep its place)", self._proc.pid,
                      self._proc.returncode, delay)
            await asyncio.sleep(delay)

    async def stop(self, timeout: float = STOP_SECONDS) -> None:
        self._stopping = True
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        if proc.poll() is None:
            log.warning("archiver: child process %d did not stop in %.0fs: killed", proc.pid,
                        timeout)
            proc.kill()


def _die_with(parent: int) -> None:
    """SIGTERM when the worker goes; if it already went before this call, exit now."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        sys.exit(0)


async def _serve(config: Config) -> None:
    archiver = Archiver(config, open_store("s3", config))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, archiver.stop)
    await archiver.run()


def main(argv: list[str]) -> int:
    parent, level = int(argv[0]), int(argv[1])
    _die_with(parent)
    config = pickle.loads(sys.stdin.buffer.read())
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s")
    asyncio.run(_serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
