"""AUTH-Kappa: one event-time stream topology for smart-meter telemetry."""

from auth_kappa.config import Config
from auth_kappa.engine import Engine

__all__ = ["Config", "Engine"]
__version__ = "0.1.0"
