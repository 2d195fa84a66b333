"""AUTH-Kappa: one event-time stream topology for smart-meter telemetry."""

__version__ = "0.1.0"
