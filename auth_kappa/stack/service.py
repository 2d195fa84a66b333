"""What every stack service offers to the manager: start, answer, stop by its own pid."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from auth_kappa.config import Config
from auth_kappa.stack import process


@dataclass
class Service:
    """Base for one local service; subclasses fill in how to start and probe it."""

    config: Config
    name: str = "service"
    start_timeout: float = 60.0

    @property
    def home(self) -> Path:
        return Path(self.config.stack_dir).resolve() / self.name

    @property
    def pidfile(self) -> Path:
        return self.home / f"{self.name}.pid"

    @property
    def logfile(self) -> Path:
        return self.home / f"{self.name}.log"

    @property
    def address(self) -> str:
        raise NotImplementedError

    def answering(self) -> bool:
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """One-time set-up before the first start (install, fetch, format)."""

    def after_start(self) -> list[str]:
        """Work once it answers (topics, bucket); returns lines to report."""
        return []

    def own_pid(self) -> int | None:
        return process.read_pid(self.pidfile)

    def launch(self) -> int:
        """Set up and spawn, without waiting: a cluster launches every node, then waits."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.prepare()
        return process.spawn(self.command(), pidfile=self.pidfile, logfile=self.logfile,
                             cwd=self.home, env=self.env())

    def start(self) -> int:
        pid = self.launch()
        process.wait_until(self.answering, what=f"{self.name} at {self.address}",
                           timeout=self.start_timeout, pid=pid, logfile=self.logfile)
        return pid

    def env(self) -> dict[str, str] | None:
        return None

    def stop(self) -> bool:
        return process.stop(self.pidfile)
