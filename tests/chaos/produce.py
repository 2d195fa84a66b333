"""A paced producer for what the simulator cannot send: explicit partitions, injected bytes.

Messages leave in list order, each when the wall clock reaches t0 + (its event time -
the first event time) / speed, so injected traffic interleaves with a paced simulator run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Out:
    topic: str
    value: bytes | None
    key: bytes | None = None
    partition: int | None = None      # None: the murmur2 partition of the key
    event_ts: float = 0.0             # pacing only
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass
class PacedProducer:
    """Runs in a thread; `join()` returns the number of delivery errors."""

    bootstrap: str
    messages: list[Out]
    speed: float | None = 10.0        # None: as fast as possible
    errors: int = 0
    _thread: threading.Thread | None = field(default=None, repr=False)

    def start(self) -> PacedProducer:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def join(self, timeout: float = 300) -> int:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.errors

    def _on_delivery(self, err, msg) -> None:
        if err is not None:
            self.errors += 1

    def _run(self) -> None:
        from confluent_kafka import Producer

        p = Producer({"bootstrap.servers": self.bootstrap, "acks": "all",
                      "enable.idempotence": True, "partitioner": "murmur2_random",
                      "linger.ms": 20, "message.timeout.ms": 120_000,
                      "message.max.bytes": 8 << 20, "on_delivery": self._on_delivery})
        t0, first = time.monotonic(), None
        for m in self.messages:
            if self.speed and m.event_ts:
                first = m.event_ts if first is None else first
                wait = t0 + (m.event_ts - first) / self.speed - time.monotonic()
                if wait > 0:
                    p.poll(wait)
            kw = {"partition": m.partition} if m.partition is not None else {}
            while True:
                try:
                    p.produce(m.topic, m.value, m.key, headers=list(m.headers), **kw)
                    break
                except BufferError:
                    p.poll(0.05)
            p.poll(0)
        self.errors += p.flush(180)


def file_messages(sim_dir: Path, prefix: str, partition_of, tag: str | None = None,
                  utilities: Iterable[str] = ("electricity", "gas", "water")) -> list[Out]:
    """The simulator's CSV files as messages in stream order (utilities interleaved by
    event time), each sent to partition_of(service_id bytes)."""
    out: list[tuple[float, int, Out]] = []
    headers = (("chaos", tag.encode()),) if tag else ()
    for u in utilities:
        high = 0.0
        for i, line in enumerate((sim_dir / f"{u}.csv").read_bytes().split(b"\n")):
            if not line:
                continue
            parts = line.split(b",")
            key = parts[0]
            try:
                high = max(high, float(parts[6]))
            except (IndexError, ValueError):
                pass
            out.append((high, i, Out(f"{prefix}{u}", line, key, partition_of(key), high,
                                     headers)))
    out.sort(key=lambda x: (x[0], x[1]))
    return [o for _, _, o in out]
