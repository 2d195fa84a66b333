"""Redis from Debian's redis-server, with append-only persistence so restarts keep state.

ACL users are not persisted: `auth-kappa stack up` (the CLI, auth_kappa/cli/stack_cmd.py)
re-applies the dashboard's read-only user after every start.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from urllib.parse import urlparse

from auth_kappa.errors import UserError
from auth_kappa.stack import probes
from auth_kappa.stack.service import Service

INSTALL_HINT = "apt-get update && apt-get install -y redis-server"


@dataclass
class RedisServer(Service):
    name: str = "redis"
    start_timeout: float = 30.0

    @property
    def port(self) -> int:
        return urlparse(self.config.redis_url).port or 6379

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def answering(self) -> bool:
        return probes.redis_ping(f"redis://127.0.0.1:{self.port}/0")

    def prepare(self) -> None:
        if shutil.which("redis-server"):
            return
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            raise UserError(f"redis-server is not installed; run: {INSTALL_HINT}")
        print("stack: installing Debian's redis-server (apt-get)", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "redis-server"]):
            if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
                raise UserError(f"could not install redis-server; run: {INSTALL_HINT}")

    def command(self) -> list[str]:
        data = self.home / "data"
        data.mkdir(parents=True, exist_ok=True)
        return [shutil.which("redis-server") or "redis-server",
                "--port", str(self.port), "--bind", "127.0.0.1",
                "--daemonize", "no", "--dir", str(data),
                "--appendonly", "yes", "--appendfsync", "everysec",
                "--save", "", "--protected-mode", "yes",
                # per-meter hashes hold up to 168 hourly windows: keep them in compact listpacks
                "--hash-max-listpack-entries", "512"]
