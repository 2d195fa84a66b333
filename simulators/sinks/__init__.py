"""Where emitted messages go. A sink sees every message once, in stream order.

The hook for new destinations (`--to s3`, `--to archive DIR`, Arrow frames with
`--frame-size`): implement `Sink` and register it in simulators.cli. Sinks never change
what is generated; they only encode the transport.
"""

from __future__ import annotations

from typing import Any, Protocol

from simulators.faults import Emission
from simulators.stream import Simulation


class Sink(Protocol):
    """open() once, write() per emission (utility-tagged, in order), close() once."""

    def open(self, sim: Simulation) -> None: ...

    def write(self, emission: Emission) -> None: ...

    def close(self) -> dict[str, Any]:
        """Flush everything; return facts for the manifest (files, topics, errors)."""
        ...
