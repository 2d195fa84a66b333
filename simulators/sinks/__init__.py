"""Where emitted messages go. A sink sees every message once, in stream order.

The hook for new destinations (`--to s3`, `--to archive DIR`): implement `Sink` and
register it in simulators.cli.make_sink. Sinks never change what is generated; they only
encode the transport. Frames (many readings per Kafka message, `--frame-size`) are the
FrameKafkaSink in frames.py: the same messages, packed with
auth_kappa.topology.frames.encode_frame (the one frame codec the decoder reads) and
grouped by murmur2 partition so a service_id stays on one partition.
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
