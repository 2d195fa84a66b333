"""History straight into the archive layout (`--to s3`, `--to archive DIR`), as fast as it goes.

Days of readings never pass through Kafka here, so the Kafka columns are synthetic but
consistent with what Kafka would have assigned: topic = <--topic-prefix><utility>,
partition = murmur2(service_id) % partitions (the producers' partitioner, auth_kappa/topology/partitioner.py),
offsets sequential per partition in stream order (malformed messages take an offset too),
ingest_time = the message's due time. Objects are cut, named and encoded by the archiver's
own code (auth_kappa.archive.rolls.encode_objects), and "malformed" is decided by the
topology's decode/validate.

No progress objects are written: there is no Kafka position behind these offsets, so a
rebuild from simulated history cannot "continue from Kafka where the archive ends"
(`auth-kappa replay rebuild --archive-only`). Keep simulated history in its own bucket or
folder; its object names would collide with a real archiver's for the same topics.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pyarrow as pa

from auth_kappa.archive.records import ARCHIVE_SCHEMA, split_messages, validated_rows
from auth_kappa.archive.rolls import encode_objects
from auth_kappa.archive.store import ObjectStore
from auth_kappa.config import UTILITIES
from auth_kappa.errors import UserError
from auth_kappa.topology.decode import Message
from auth_kappa.topology.partitioner import partitions_of
from simulators.faults import Emission
from simulators.sinks.frames import parse_lines
from simulators.stream import Simulation

ROLL_ROWS = 1 << 19


class ArchiveSink:
    def __init__(self, store: ObjectStore, topic_prefix: str = "", partitions: int = 4) -> None:
        self.store = store
        self.topics = {u: f"{topic_prefix}{u}" for u in UTILITIES}
        self.partitions = partitions
        self._format = "csv"
        self._part: np.ndarray | None = None
        self._next: dict[tuple[str, int], int] = {}
        self._pending: dict[tuple[str, int], list[tuple[pa.Table, pa.Table]]] = {}
        self._rows: dict[tuple[str, int], int] = {}
        self._first: dict[tuple[str, int], int] = {}
        self._loop = asyncio.new_event_loop()
        self.objects = self.bytes = self.rows = self.quarantined = 0

    def open(self, sim: Simulation) -> None:
        if sim.format.name not in ("csv", "json"):
            raise UserError("--to s3/archive archives csv or json messages; use --format csv "
                            "or json (the archive itself is Parquet)")
        self._format = sim.format.name
        keys = sim.registry.service_id.cast("binary").to_pylist()
        self._part = partitions_of(keys, self.partitions)
        from auth_kappa.archive.store import StoreUnavailable
        from auth_kappa.errors import ServiceUnavailable

        try:   # fail now, in one line, if the store cannot be reached
            self._run(self.store.list("archive/_none/"))
        except StoreUnavailable as exc:
            self._abandon()   # no "Unclosed client session" after the one line
            raise ServiceUnavailable(f"cannot write the archive: {exc}; run `auth-kappa stack "
                                     "up` or set AUTH_S3_ENDPOINT / AUTH_S3_BUCKET") from None

    def _abandon(self) -> None:
        """Close the store's client and the loop without writing anything more."""
        try:
            self._run(self.store.close())
        finally:
            self._loop.close()

    def _run(self, coro: Any) -> Any:
        return self._loop.run_until_complete(coro)

    def write(self, emission: Emission) -> None:
        u = emission.utility
        part = self._part[emission.meter]
        bad = emission.malformed if emission.malformed is not None else \
            np.zeros(len(emission), bool)
        ingest = (np.asarray(emission.emit_ts, np.float64) * 1000).astype(np.int64)
        order = np.argsort(part, kind="stable")
        counts = np.bincount(part, minlength=self.partitions)
        lo = 0
        for p, n in enumerate(counts.tolist()):
            if n:
                idx = order[lo:lo + n]
                self._add(u, p, emission.payload.take(pa.array(idx)), bad[idx], ingest[idx])
            lo += n

    def _add(self, utility: str, p: int, payload: pa.Array, bad: np.ndarray,
             ingest: np.ndarray) -> None:
        slot = (utility, p)
        topic = self.topics[utility]
        first = self._next.get(slot, 0)
        offsets = np.arange(first, first + len(payload), dtype=np.int64)
        self._next[slot] = first + len(payload)
        self._first.setdefault(slot, first)
        good = np.flatnonzero(~bad)
        table = parse_lines(payload.take(pa.array(good)), self._format)
        ok, rejected = validated_rows(utility, table)
        archive = pa.table({
            **{name: table[name] for name in table.column_names},
            "topic": pa.array([topic] * len(good), pa.string()),
            "partition": pa.array(np.full(len(good), p, np.int32)),
            "offset": pa.array(offsets[good]),
            "row": pa.array(np.zeros(len(good), np.int32)),
            "ingest_time": pa.array(ingest[good], pa.timestamp("ms", tz="UTC")),
        }, schema=ARCHIVE_SCHEMA).filter(pa.array(ok))
        malformed = np.flatnonzero(bad)
        msgs = [Message(v, p, int(offsets[i])) for i, v in
                zip(malformed.tolist(), payload.take(pa.array(malformed)).to_pylist(),
                    strict=True)]
        if rejected:  # a well-formed-looking line the topology still rejects: one at a time
            msgs += [Message(payload[int(good[i])].as_py(), p, int(offsets[good[i]]))
                     for i, _, _ in rejected]
            msgs.sort(key=lambda m: m.offset)
        extra, quarantine = split_messages(utility, topic, msgs,
                                           ingest[np.searchsorted(offsets, [m.offset for m in msgs])]
                                           if msgs else np.zeros(0, np.int64))
        self._pending.setdefault(slot, []).append((pa.concat_tables([archive, extra]),
                                                   quarantine))
        self._rows[slot] = self._rows.get(slot, 0) + len(payload)
        if self._rows[slot] >= ROLL_ROWS:
            self._flush(slot)

    def _flush(self, slot: tuple[str, int]) -> None:
        parts = self._pending.pop(slot, [])
        self._rows.pop(slot, None)
        first = self._first.pop(slot, None)
        if not parts or first is None:
            return
        utility, p = slot
        archive = pa.concat_tables([a for a, _ in parts])
        quarantine = pa.concat_tables([q for _, q in parts])
        objects = encode_objects(utility, self.topics[utility], p, first, self._next[slot] - 1,
                                 archive, quarantine)
        self._run(self._put_all(objects))
        self.objects += len(objects)
        self.bytes += sum(len(d) for _, d in objects)
        self.rows += archive.num_rows
        self.quarantined += quarantine.num_rows

    async def _put_all(self, objects: list[tuple[str, bytes]]) -> None:
        sem = asyncio.Semaphore(16)

        async def put(key: str, data: bytes) -> None:
            async with sem:
                await self.store.put(key, data)
        await asyncio.gather(*(put(k, d) for k, d in objects))

    def close(self) -> dict[str, Any]:
        try:
            for slot in sorted(self._pending):
                self._flush(slot)
            self._run(self.store.close())
        finally:
            self._loop.close()
        return {"to": "archive", "archive": self.store.url, "topics": self.topics,
                "partitions": self.partitions, "objects": self.objects,
                "parquet_bytes": self.bytes, "rows": self.rows,
                "quarantined": self.quarantined,
                "offsets": {f"{self.topics[u]}:{p}": n for (u, p), n in sorted(self._next.items())}}
