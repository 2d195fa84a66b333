"""Checkpoint transactions as raw RESP, packed by numpy, on a socket of their own.

A checkpoint writes tens of thousands of windows. Through redis-py each command costs
~2 us of Python to pack and ~1 us to parse its reply; through a Lua loop each window
costs ~2 us of Redis inside the transaction, when nothing else can run. Here a
window's HSET is one fixed-width numpy record (key, field and value copied into a
template), a batch of them is one `tobytes()`, and the replies are parsed by hiredis.
Redis parses queued commands as they arrive, between other clients' commands; only
EXEC runs them back to back, at ~1 us each.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import hiredis
import numpy as np
import redis

Arg = bytes | str | int | float


def command(*args: Arg) -> bytes:
    """One command in RESP (for the few small ones around the packed batches)."""
    return b"*%d\r\n" % len(args) + encoded(args)


def encoded(args: Sequence[Arg]) -> bytes:
    """Arguments as RESP bulk strings, without the command's header: a caller that sends
    the same arguments many times (a page's window starts) encodes them once."""
    parts = []
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(parts)


def with_encoded(name: Arg, key: Arg, n: int, tail: bytes) -> bytes:
    """`name key` followed by n arguments already encoded by `encoded`."""
    return b"*%d\r\n" % (n + 2) + encoded((name, key)) + tail


def decimal(values: np.ndarray) -> np.ndarray:
    """Non-negative integers as decimal byte strings (fixed width: all as wide as the
    widest; callers group by width where widths differ)."""
    v = np.asarray(values, np.int64)
    width = max(1, len(str(int(v.max())))) if len(v) else 1
    digits = np.empty((len(v), width), np.uint8)
    rest = v.copy()
    for i in range(width - 1, -1, -1):
        digits[:, i] = rest % 10 + 48
        rest //= 10
    return digits.view(f"S{width}").ravel()


def widths(values: np.ndarray) -> np.ndarray:
    """Decimal width of each non-negative integer."""
    v = np.asarray(values, np.int64)
    return np.floor(np.log10(np.maximum(v, 1))).astype(np.int64) + 1


def concat(*parts: bytes | np.ndarray) -> np.ndarray:
    """Row by row, constants (bytes) and fixed-width arrays (numpy S, or records whose
    bytes are taken as they are) joined into one fixed-width byte string per row: one
    structured array filled column by column, no Python loop over rows."""
    arrays = [p for p in parts if not isinstance(p, bytes)]
    rows = len(arrays[0]) if arrays else 1
    cols = [(f"f{i}", f"V{len(p) if isinstance(p, bytes) else p.dtype.itemsize}")
            for i, p in enumerate(parts)]
    rec = np.empty(rows, np.dtype(cols))
    for (name, _), p in zip(cols, parts, strict=True):
        rec[name] = np.void(p) if isinstance(p, bytes) else \
            np.ascontiguousarray(p).view(rec.dtype[name])
    return rec.view(f"S{rec.dtype.itemsize}").ravel()


def pack(name: bytes, *args: bytes | np.ndarray) -> bytes:
    """One command per row, e.g. pack(b"HSET", keys, fields, values), each argument a
    constant or a fixed-width array (see concat): every command has the same shape."""
    parts: list[bytes | np.ndarray] = []
    const = b"*%d\r\n$%d\r\n%s\r\n" % (len(args) + 1, len(name), name)
    for a in args:
        const += b"$%d\r\n" % (len(a) if isinstance(a, bytes) else a.dtype.itemsize)
        if isinstance(a, bytes):
            const += a + b"\r\n"
            continue
        parts += [const, a]
        const = b"\r\n"
    return concat(*parts, const).tobytes()


TRANSACTION_HEAD = b"+OK\r\n"   # MULTI's reply
QUEUED = b"+QUEUED\r\n"


class RespConnection:
    """A plain socket to Redis for checkpoint transactions (one writer at a time)."""

    def __init__(self, opts: Mapping[str, Any], timeout: float = 120.0) -> None:
        """`opts`: a redis-py pool's connection_kwargs (host/port or path, db, username,
        password), so this socket goes where the store's client goes."""
        self.opts, self.timeout = dict(opts), timeout
        self.where = opts.get("path") or f"{opts.get('host', '127.0.0.1')}:{opts.get('port', 6379)}"
        self.lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._reader = hiredis.Reader()

    def _connect(self) -> socket.socket:
        if self.opts.get("path"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            sock.connect(self.opts["path"])
        else:
            sock = socket.create_connection((self.opts.get("host", "127.0.0.1"),
                                             int(self.opts.get("port", 6379))), self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock, self._reader = sock, hiredis.Reader()
        hello: list[bytes] = []
        if self.opts.get("password"):
            user = self.opts.get("username")
            hello.append(command("AUTH", *([user] if user else []), self.opts["password"]))
        if int(self.opts.get("db", 0) or 0):
            hello.append(command("SELECT", int(self.opts["db"])))
        if hello:
            self.roundtrip(b"".join(hello), len(hello))
        return sock

    def roundtrip(self, payload: bytes, replies: int, check: bool = True) -> list:
        """Send a payload of `replies` commands; their replies, errors raised (with
        check=False the caller inspects them)."""
        self.send(payload)
        return self.replies(replies, check)

    def send(self, payload: bytes) -> None:
        """Commands whose replies `replies` reads later (a payload sent in parts)."""
        sock = self._sock or self._connect()
        try:
            sock.sendall(payload)
        except OSError:
            self.close()
            raise

    def replies(self, n: int, check: bool = True) -> list:
        """The next n replies, errors raised (with check=False the caller inspects them)."""
        sock = self._sock
        if sock is None:
            raise redis.ConnectionError(f"no connection to Redis at {self.where} to read "
                                        "replies from")
        try:
            out = self._read(sock, n)
        except (OSError, redis.RedisError):
            self.close()
            raise
        if check:
            for r in out:
                raise_if_error(r)
        return out

    def transaction_replies(self, queued: int) -> list:
        """MULTI's, `queued` QUEUED and EXEC's replies, as replies(queued + 2,
        check=False) gives them. The QUEUED ones are matched as one run of bytes instead of
        parsed one by one (63 ms of Python per 100k commands, for a checkpoint's writer);
        any other reply among them (a command refused while queued) is parsed as usual."""
        sock = self._sock
        if sock is None or self._reader.has_data():
            return self.replies(queued + 2, check=False)
        expected = TRANSACTION_HEAD + QUEUED * queued
        got = bytearray()
        try:
            while len(got) < len(expected):
                data = self._recv(sock)
                at = len(got)
                got += data
                if got[at:len(expected)] != expected[at:len(got)]:
                    self._reader.feed(bytes(got))    # something else was queued: parse all
                    return self.replies(queued + 2, check=False)
            self._reader.feed(bytes(got[len(expected):]))
            (exec_reply,) = self._read(sock, 1)
        except (OSError, redis.RedisError):
            self.close()
            raise
        return [b"OK", *[b"QUEUED"] * queued, exec_reply]

    def _read(self, sock: socket.socket, n: int) -> list:
        out: list = []
        while len(out) < n:
            reply = self._reader.gets()
            if reply is not False:
                out.append(reply)
                continue
            self._reader.feed(self._recv(sock))
        return out

    def _recv(self, sock: socket.socket) -> bytes:
        data = sock.recv(1 << 20)
        if not data:
            raise redis.ConnectionError(f"Redis at {self.where} closed the connection "
                                        "during a checkpoint")
        return data

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def raise_if_error(reply: object) -> None:
    """Errors as exceptions; an EXEC's array is searched too (a command in it failed).
    Exact type checks: this runs once per queued command."""
    if type(reply) is hiredis.ReplyError:
        raise redis.ResponseError(str(reply))
    if type(reply) is list:
        for r in reply:
            if type(r) is hiredis.ReplyError or type(r) is list:
                raise_if_error(r)
