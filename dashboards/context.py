"""Everything a request handler needs, built once per app (no module-level globals)."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import HTTPConnection

from dashboards.auth import Access
from dashboards.cache import TTLCache
from dashboards.metrics import RequestStats
from dashboards.poller import Poller
from dashboards.sources import Source


@dataclass
class Settings:
    sse_interval: float = 1.0      # seconds between a stream's re-reads
    sse_max_age: float = 600.0     # a stream ends after this; EventSource reconnects
    sse_max_clients: int = 2000    # beyond this, 503: bounded memory and file descriptors
    meter_ttl: float = 0.5         # cache: a meter's summary (checkpoints are ~1 s apart)
    fleet_ttl: float = 1.0         # cache: fleet map and totals
    stale: float = 5.0             # cache: an expired answer still served while it refreshes
    poll_interval: float = 1.0     # clock and counters refresh


@dataclass
class Context:
    source: Source
    access: Access
    settings: Settings = field(default_factory=Settings)
    cache: TTLCache = field(default_factory=TTLCache)
    requests: RequestStats = field(default_factory=RequestStats)
    poller: Poller | None = None

    def __post_init__(self) -> None:
        if self.poller is None:
            self.poller = Poller(self.source, self.settings.poll_interval)


def ctx(conn: HTTPConnection) -> Context:
    return conn.app.state.ctx
