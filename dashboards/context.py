"""Everything a request handler needs, built once per app (no module-level globals)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from starlette.requests import HTTPConnection

from auth_kappa.errors import UserError
from auth_kappa.insights.tariff import Tariff
from dashboards import cpu_priority
from dashboards.alert_queries import Decoder
from dashboards.auth import Access
from dashboards.cache import TTLCache
from dashboards.live import Streams
from dashboards.metrics import RequestStats
from dashboards.poller import Poller
from dashboards.readers import Reader


@dataclass
class Settings:
    sse_interval: float = 1.0      # seconds between a stream's re-reads
    sse_max_age: float = 600.0     # a stream ends after this; EventSource reconnects
    sse_max_clients: int = 2000    # beyond this, 503: bounded memory and file descriptors
    sse_per_client: int = 32       # streams per client address (429 beyond)
    sse_per_link: int = 6          # streams per household link or operator session (429)
    meter_ttl: float = 0.5         # cache: a meter's summary (a checkpoint every AUTH_COMMIT_INTERVAL, 250ms by default, longer under load)
    fleet_ttl: float = 1.0         # cache: fleet map and totals
    alerts_ttl: float = 5.0        # cache: every alert held (gaps open 5 minutes late anyway)
    stale: float = 5.0             # cache: an expired answer still served while it refreshes
    poll_interval: float = 1.0     # clock and counters refresh
    # ---- the edges (dashboards/guards.py, dashboards/protocol.py)
    max_body: int = 16384          # bytes of a request body; 413 beyond, before reading it
    body_timeout: float = 10.0     # seconds a body may pause between chunks (408)
    header_timeout: float = 10.0   # seconds for a request's headers; the connection closes
    keep_alive: int = 5            # seconds an idle keep-alive connection stays open
    max_connections: int = 2500    # uvicorn limit_concurrency: 503 beyond
    allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "[::1]")
    behind_tls_proxy: bool = False  # HSTS and Secure cookies though uvicorn speaks http
    cpu_priority: str = "auto"     # the serving thread's: auto, realtime, normal (cpu_priority.py)

    @classmethod
    def from_env(cls, host: str = "127.0.0.1", env: Mapping[str, str] | None = None
                 ) -> Settings:
        """AUTH_DASHBOARD_ALLOWED_HOSTS (comma list; default the loopback names, plus `host`
        when it names one address), AUTH_DASHBOARD_BEHIND_TLS_PROXY (1/true) and
        AUTH_DASHBOARD_CPU_PRIORITY (auto, realtime, normal)."""
        env = os.environ if env is None else env
        hosts = tuple(_bracketed(h.strip()) for h in
                      env.get("AUTH_DASHBOARD_ALLOWED_HOSTS", "").split(",") if h.strip())
        if not hosts:
            wildcard = host in ("0.0.0.0", "::", "[::]", "")
            hosts = cls.allowed_hosts + (("*",) if wildcard else (_bracketed(host),))
        proxy = env.get("AUTH_DASHBOARD_BEHIND_TLS_PROXY", "").strip().lower()
        if proxy not in ("", "0", "1", "true", "false", "yes", "no"):
            raise UserError("AUTH_DASHBOARD_BEHIND_TLS_PROXY must be 1 or 0")
        return cls(allowed_hosts=tuple(dict.fromkeys(hosts)),
                   behind_tls_proxy=proxy in ("1", "true", "yes"),
                   cpu_priority=cpu_priority.parse_mode(env.get("AUTH_DASHBOARD_CPU_PRIORITY")))


@dataclass
class Context:
    reader: Reader
    access: Access
    settings: Settings = field(default_factory=Settings)
    cache: TTLCache = field(default_factory=TTLCache)
    requests: RequestStats = field(default_factory=RequestStats)
    poller: Poller | None = None
    streams: Streams | None = None
    alerts: Decoder = field(default_factory=Decoder)   # decoded alerts, snapshot to snapshot
    # the workers' tariff (AUTH_TARIFF; default the example one): prices of the bill
    tariff: Tariff = field(default_factory=lambda: Tariff.load(os.environ.get("AUTH_TARIFF")
                                                               or None))

    def __post_init__(self) -> None:
        if self.poller is None:
            self.poller = Poller(self.reader, self.settings.poll_interval)
        if self.streams is None:
            s = self.settings
            self.streams = Streams(self.requests, s.sse_max_clients, s.sse_per_client,
                                   s.sse_per_link)


def _bracketed(host: str) -> str:
    """An IPv6 literal as a Host header carries it: [::1]."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def ctx(conn: HTTPConnection) -> Context:
    return conn.app.state.ctx
