"""The archive against real Kafka, Redis and SeaweedFS: complete, exactly once, crash-proof."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from auth_kappa.archive import layout
from auth_kappa.archive.archiver import Archiver
from auth_kappa.archive.s3_store import S3Store
from tests.support.archive import (
    drop_bucket,
    make_bucket,
    progress,
    read_all,
    s3,
    valid_lines,
    wait_archived,
)
from tests.support.live import LiveCase, Streaming

pytestmark = [pytest.mark.stack, pytest.mark.slow]
UTILS = ("electricity", "gas", "water")


@pytest.fixture
def case(stack, tmp_path, unique):
    c = LiveCase(f"ar{unique}", tmp_path, extra_env={
        "AUTH_ARCHIVE": "1", "AUTH_S3_BUCKET": f"ar{unique}",
        "AUTH_ARCHIVE_ROLL_SECONDS": "1", "AUTH_ARCHIVE_ROLL_BYTES": "200000"})
    make_bucket(c.config)
    c.create_topics()
    yield c
    c.cleanup()
    drop_bucket(c.config)


def _messages(m: dict) -> dict[str, int]:
    return {u: m["utilities"][u]["messages"] for u in UTILS}


def _assert_exactly_once(case: LiveCase, ends: dict[str, int]) -> None:
    """Every offset of every partition is in the archive or quarantine, exactly once."""
    rows = read_all(s3(case.config), "archive/")
    bad = read_all(s3(case.config), "quarantine/")
    assert not rows.duplicated(["topic", "partition", "offset", "row"]).any()
    assert not bad.duplicated(["topic", "partition", "offset", "row"]).any()
    for name, end in ends.items():
        topic, p = name.rsplit(":", 1)
        got = set(rows[(rows.topic == topic) & (rows.partition == int(p))]["offset"]) | \
            set(bad[(bad.topic == topic) & (bad.partition == int(p))]["offset"])
        assert got == set(range(end)), name


def test_archive_holds_every_message_once_late_and_duplicates_included(case):
    m = case.simulate("--meters", "60", "--duration", "5m", "--seed", "41",
                      "--late-fraction", "0.03", "--late-delay", "2m",
                      "--duplicate-fraction", "0.03", "--malformed-fraction", "0.01")
    case.simulate("--meters", "60", "--duration", "5m", "--seed", "41",
                  "--late-fraction", "0.03", "--late-delay", "2m",
                  "--duplicate-fraction", "0.03", "--malformed-fraction", "0.01", to="files")
    case.start_worker()
    case.wait_until(_messages(m))
    ends = wait_archived(case.config, log=case.log_tail)
    rows = read_all(s3(case.config), "archive/")
    bad = read_all(s3(case.config), "quarantine/")
    for u in UTILS:
        valid, malformed = valid_lines(case.workdir / "sim-files", u)
        mine = rows[rows.topic == f"{case.name}-{u}"]
        # content: the seven fields of every valid message, duplicates and late ones included
        expect = sorted(tuple(ln.decode().split(",")) for ln in valid)
        got = sorted(zip(mine.service_id, mine.user_name, mine.type, mine.start_ts.astype(str),
                         mine.state, [f"{v:.{m['utilities'][u]['decimals']}f}"
                                      for v in mine.consumption],
                         mine.end_ts.astype(str), strict=True))
        assert got == expect, u
        assert len(mine) == m["utilities"][u]["messages"] - m["utilities"][u]["malformed"]
        q = bad[bad.topic == f"{case.name}-{u}"]
        assert sorted(q.raw) == sorted(malformed) and q.reason.str.len().min() > 0
        # event-time partitioning: each row sits in the folder of its end_ts hour
        for key, end_ts in mine.groupby("key")["end_ts"]:
            assert {layout.hour_path("archive", u, int(t) // 3600 * 3600) for t in end_ts} == \
                {key.rsplit("/", 1)[0] + "/"}
    late = {u: m["utilities"][u]["late"] for u in UTILS}
    assert sum(late.values()) > 0 and sum(m["utilities"][u]["duplicates"] for u in UTILS) > 0
    _assert_exactly_once(case, ends)


class Crash(Exception):
    """Stands for kill -9 in the middle of a roll's upload."""


class CrashingS3(S3Store):
    """Real SeaweedFS; after `after` data objects every call fails, as if the process died."""

    def __init__(self, *a, after: int, **kw) -> None:
        super().__init__(*a, **kw)
        self.after, self.data_puts, self.dead = after, 0, False
        self.written: dict[str, bytes] = {}

    async def put(self, key: str, data: bytes) -> None:
        if self.dead:
            raise Crash(key)
        if key.startswith("archive/utility="):
            if self.data_puts >= self.after:
                self.dead = True
                raise Crash(key)
            self.data_puts += 1
            self.written[key] = data
        await super().put(key, data)

    async def get(self, key: str) -> bytes | None:
        if self.dead:
            raise Crash(key)
        return await super().get(key)


def _run_archiver(archiver: Archiver, until, timeout: float) -> None:
    async def go():
        task = asyncio.create_task(archiver.run())
        deadline = time.monotonic() + timeout
        while not await asyncio.to_thread(until) and not task.done() and \
                time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        archiver.stop()
        try:
            await asyncio.wait_for(task, 60)
        except Crash:
            pass
    asyncio.run(go())


def test_crash_mid_roll_then_restart_with_other_boundaries_is_exactly_once(case):
    """The pitfall: a retried time-based roll would cut other boundaries and overlap.
    The pending record makes the restart redo the same range, byte for byte."""
    m = case.simulate("--meters", "200", "--duration", "4m", "--seed", "42",
                      "--malformed-fraction", "0.005")
    c = case.config.with_(archive_roll_bytes=150_000, archive_roll_seconds=60.0)
    crashing = CrashingS3(c.s3_endpoint, c.s3_bucket, c.s3_access_key, c.s3_secret_key,
                          c.s3_region, after=7)
    _run_archiver(Archiver(c, crashing), until=lambda: crashing.dead, timeout=90)
    assert crashing.dead, "never crashed: the test would prove nothing"
    pending = {k: p for k, p in progress(s3(c)).items() if p.pending}
    assert pending, "the crash must leave a roll pending"
    # restart with different roll boundaries (size and time), as after a config change
    c2 = c.with_(archive_roll_bytes=90_000, archive_roll_seconds=0.5)
    ends = {f"{t}:{p}": n for t, p, n in _ends(case)}
    done = lambda: all(p.next_offset >= ends[k] and not p.pending  # noqa: E731
                       for k, p in progress(s3(c2)).items()) and \
        len(progress(s3(c2))) == len([e for e in ends.values() if e])
    _run_archiver(Archiver(c2, S3Store.from_config(c2)), until=done, timeout=120)
    assert done()
    # the redone roll kept its name and its bytes
    rewritten = read_keys(c2, list(crashing.written))
    for key, data in crashing.written.items():
        assert rewritten[key] == data, key
    _assert_exactly_once(case, ends)
    rows = read_all(s3(c2), "archive/")
    assert len(rows) == sum(m["utilities"][u]["messages"] - m["utilities"][u]["malformed"]
                            for u in UTILS)


def _ends(case: LiveCase):
    from tests.support.archive import end_offsets

    for name, end in end_offsets(case.config).items():
        topic, p = name.rsplit(":", 1)
        yield topic, p, end


def read_keys(config, keys: list[str]) -> dict[str, bytes]:
    async def go():
        store = S3Store.from_config(config)
        out = {k: await store.get(k) for k in keys}
        await store.close()
        return out
    return asyncio.run(go())


def test_worker_killed_mid_stream_restarts_and_archive_stays_exactly_once(case):
    # small fetches and rolls (hundreds of uploads) and a stream still being produced: the
    # kill, at the first progress seen, lands while the archive is still being written.
    # The archiver as a task in the worker's event loop (elsewhere: its child process)
    case.extra_env.update(AUTH_BATCH_SIZE="300", AUTH_ARCHIVE_ROLL_BYTES="6000",
                          AUTH_ARCHIVE_PROCESS="0")
    case.create_topics()
    first = case.start_worker()
    stream = Streaming(case, "--meters", "400", "--duration", "8m", "--seed", "43",
                     "--duplicate-fraction", "0.01")
    deadline = time.monotonic() + 90
    archived = lambda: sum(p.next_offset for p in progress(s3(case.config)).values())  # noqa: E731
    while archived() == 0:   # one read per check: a read takes ~0.5 s
        assert time.monotonic() < deadline, case.log_tail()
        time.sleep(0.1)
    assert not _archiver_children(first.pid), "AUTH_ARCHIVE_PROCESS=0 archives in the worker"
    case.kill(first)
    at_kill = archived()
    m = stream.manifest()
    total = sum(_messages(m).values())
    assert at_kill < total, f"killed too late to matter: {at_kill} of {total} archived"
    case.start_worker()
    case.wait_until(_messages(m))
    ends = wait_archived(case.config, log=case.log_tail)
    _assert_exactly_once(case, ends)


def _archiver_children(worker: int) -> set[int]:
    """Live (not zombie) archiver child processes of this worker pid."""
    out = set()
    for d in Path("/proc").glob("[0-9]*"):
        try:
            status = (d / "status").read_text()
            cmd = (d / "cmdline").read_bytes()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if b"auth_kappa.archive.child_process" in cmd and \
                int(fields["PPid"]) == worker and not fields["State"].startswith("Z"):
            out.add(int(d.name))
    return out


def _wait_child(case: LiveCase, worker: int, other_than: int = 0) -> int:
    deadline = time.monotonic() + 60
    while not (pids := _archiver_children(worker) - {other_than}):
        assert time.monotonic() < deadline, case.log_tail()
        time.sleep(0.1)
    return pids.pop()


def _alive(pid: int) -> bool:
    try:
        return not (Path(f"/proc/{pid}/status").read_text().split("State:\t")[1]
                    .startswith("Z"))
    except (OSError, IndexError):
        return False


def test_archiver_child_is_restarted_alone_and_dies_with_its_worker(case):
    """The archiver is a child process of the worker (AUTH_ARCHIVE_PROCESS, the default).
    Killed alone, the worker starts another and the archive stays exactly once; the
    worker killed alone (its pid, not its group), the child goes too: no orphan reads on."""
    case.extra_env.update(AUTH_BATCH_SIZE="300", AUTH_ARCHIVE_ROLL_BYTES="20000")
    case.create_topics()
    worker = case.start_worker()
    first = _wait_child(case, worker.pid)
    stream = Streaming(case, "--meters", "400", "--duration", "8m", "--seed", "44")
    deadline = time.monotonic() + 90
    archived = lambda: sum(p.next_offset for p in progress(s3(case.config)).values())  # noqa: E731
    while archived() < 2_000:
        assert time.monotonic() < deadline, case.log_tail()
        time.sleep(0.1)
    os.kill(first, signal.SIGKILL)
    at_kill = archived()
    m = stream.manifest()
    total = sum(_messages(m).values())
    assert at_kill < total, f"killed too late to matter: {at_kill} of {total} archived"
    second = _wait_child(case, worker.pid, other_than=first)
    case.wait_until(_messages(m))
    ends = wait_archived(case.config, log=case.log_tail)
    _assert_exactly_once(case, ends)
    assert "exited with -9; restarting" in "".join(case.logs())

    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)
    deadline = time.monotonic() + 30   # SIGTERM from the kernel, then its graceful drain
    while _alive(second):
        assert time.monotonic() < deadline, f"archiver {second} outlived its worker"
        time.sleep(0.2)


def _free_s3_port() -> int:
    """A port P with P, P+1000..1002 and their +10000 gRPC twins free (SeaweedFS uses all)."""
    import random
    import socket

    for _ in range(50):
        port = random.randint(12000, 18000)   # all its ports stay below the ephemeral range
        ports = [port, port + 1000, port + 1001, port + 1002]
        ports += [p + 10000 for p in ports]
        try:
            for p in ports:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port range for a private SeaweedFS")


def test_s3_outage_buffers_pauses_and_recovers_without_loss(case, tmp_path):
    """A private SeaweedFS (the shared one stays up for everyone else), stopped and restarted."""
    import threading

    from auth_kappa.stack import process
    from auth_kappa.stack.seaweed import SeaweedS3

    port = _free_s3_port()
    c = case.config.with_(s3_endpoint=f"http://127.0.0.1:{port}", stack_dir=str(tmp_path / "s"),
                          archive_buffer_bytes=300_000, archive_retry_max=1.0,
                          archive_roll_seconds=0.5, archive_roll_bytes=100_000,
                          batch_size=1000)
    weed = SeaweedS3(c)
    weed.start()
    try:
        make_bucket(c)
        m1 = case.simulate("--meters", "150", "--duration", "2m", "--seed", "44")
        archiver = Archiver(c, S3Store.from_config(c))
        thread = threading.Thread(target=lambda: asyncio.run(archiver.run()), daemon=True)
        thread.start()
        total1 = sum(m1["utilities"][u]["messages"] for u in UTILS)
        deadline = time.monotonic() + 60
        while archiver.stats.rows < total1:
            assert time.monotonic() < deadline and thread.is_alive(), archiver.stats
            time.sleep(0.2)
        process.stop(weed.pidfile, timeout=1)         # the outage (SIGTERM, then SIGKILL)
        m2 = case.simulate("--meters", "150", "--duration", "4m", "--seed", "44",
                           "--start", "2026-03-02T00:02:00Z")
        deadline = time.monotonic() + 60
        while not (archiver.stats.pauses and archiver.stats.failed_attempts >= 3):
            assert time.monotonic() < deadline and thread.is_alive(), archiver.stats
            time.sleep(0.2)
        rows_during = archiver.stats.rows
        buffered = archiver.buffered_bytes
        # the bound holds up to one fetch (batch_size records) past it
        assert buffered <= c.archive_buffer_bytes + c.batch_size * 300, buffered
        time.sleep(2)
        assert archiver.stats.rows == rows_during, "nothing can be archived while S3 is down"
        weed.start()                                   # S3 returns
        total = total1 + sum(m2["utilities"][u]["messages"] for u in UTILS)
        deadline = time.monotonic() + 90
        while archiver.stats.rows < total:
            assert time.monotonic() < deadline and thread.is_alive(), archiver.stats
            time.sleep(0.2)
        archiver.stop()
        thread.join(60)
        ends = {k: v for k, v in __import__("tests.support.archive", fromlist=["x"])
                .end_offsets(c).items()}
        case_private = LiveCase(case.name, case.workdir, extra_env={
            **case.extra_env, "AUTH_S3_ENDPOINT": c.s3_endpoint})
        _assert_exactly_once(case_private, ends)
        assert archiver.stats.rows == total
    finally:
        process.stop(weed.pidfile, timeout=1)
