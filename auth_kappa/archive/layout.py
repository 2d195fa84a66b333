"""Object names: where a roll's rows land, and how to read a name back."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

ARCHIVE = "archive"
QUARANTINE = "quarantine"
PROGRESS = f"{ARCHIVE}/_progress"

_NAME = re.compile(r"^(?P<topic>.+)-(?P<partition>\d+)-(?P<first>\d+)-(?P<last>\d+)\.parquet$")
_HOUR = re.compile(r"utility=(?P<utility>[^/]+)/date=(?P<date>\d{4}-\d{2}-\d{2})/hour=(?P<hour>\d{2})/")


def hour_path(kind: str, utility: str, hour_ts: int) -> str:
    """`kind/utility=U/date=YYYY-MM-DD/hour=HH/` for the UTC hour starting at hour_ts."""
    t = time.gmtime(hour_ts)
    return f"{kind}/utility={utility}/date={t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}/" \
           f"hour={t.tm_hour:02d}/"


def object_name(topic: str, partition: int, first: int, last: int) -> str:
    return f"{topic}-{partition}-{first}-{last}.parquet"


def data_key(utility: str, hour_ts: int, topic: str, partition: int, first: int, last: int) -> str:
    return hour_path(ARCHIVE, utility, hour_ts) + object_name(topic, partition, first, last)


def quarantine_key(utility: str, hour_ts: int, topic: str, partition: int, first: int,
                   last: int) -> str:
    return hour_path(QUARANTINE, utility, hour_ts) + object_name(topic, partition, first, last)


def progress_key(topic: str, partition: int) -> str:
    return f"{PROGRESS}/{topic}/{partition}.json"


@dataclass(frozen=True)
class ObjectRef:
    """A data object found by listing: its key, size and what its name says."""

    key: str
    size: int
    utility: str
    hour_ts: int
    topic: str
    partition: int
    first: int
    last: int


def parse_key(key: str, size: int = 0) -> ObjectRef | None:
    """ObjectRef for a data/quarantine object key, None for anything else."""
    m, n = _HOUR.search(key), _NAME.match(key.rsplit("/", 1)[-1])
    if not m or not n:
        return None
    day = time.strptime(m["date"], "%Y-%m-%d")
    hour_ts = int(_timegm(day)) + 3600 * int(m["hour"])
    return ObjectRef(key, size, m["utility"], hour_ts, n["topic"], int(n["partition"]),
                     int(n["first"]), int(n["last"]))


def hours(start: int, end: int) -> list[int]:
    """Start of every UTC hour that overlaps [start, end)."""
    first = start // 3600 * 3600
    return list(range(int(first), int(end), 3600)) if end > start else []


def _timegm(t: time.struct_time) -> int:
    import calendar

    return calendar.timegm(t)
