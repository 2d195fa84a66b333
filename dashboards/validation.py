"""Request values checked against closed sets and strict patterns before any Redis key is built.

Every id, utility, window, range and search text that reaches a key or a field name
passes through here first, so nothing from a URL can add `*`, `:`, `{`, a newline or a
second key to a Redis command.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping

from auth_kappa.topology.schema import STATES, UTILITIES

# used with fullmatch: `$` would also accept a trailing newline
SID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SEARCH = re.compile(r"[\w .'-]{1,64}")      # names, uuid prefixes; no control characters
DIGITS = re.compile(r"[0-9]{1,10}")          # ASCII only: \d also matches "١" and "٣"
# 2026-03-02T10:00:00Z, 2026-03-02T05:00+05:00, fractions of a second; "+" arrives as " "
# when a client forgets to encode it, so a space is taken for "+" before the offset
ISO = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ]"
                 r"([0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?)"
                 r"([Zz]|[+ -][0-9]{2}:?[0-9]{2})")
FORMATS = ("json", "csv")
RANGES: dict[str, int] = {"hour": 3600, "day": 86400}
MAX_POINTS = 1500          # per window query: bounds one reply's size
EARLIEST = 946684800       # 2000-01-01: older timestamps are typos, not history
LATEST = 4102444800        # 2100-01-01


class Invalid(ValueError):
    """A request value that fails validation; the API answers 400 with the message."""


def service_id(text: str) -> str:
    """Canonical lower-case uuid, as the workers store it (anything else: 400)."""
    if not isinstance(text, str) or not SID.fullmatch(text):
        raise Invalid("service_id must be a lower-case uuid like "
                      "1b4e28ba-2fa1-41d2-883f-0016d3cca427")
    return text


def utility(text: str | None, default: str | None = None) -> str:
    value = text if text is not None else default
    if value not in UTILITIES:
        raise Invalid(f"utility must be one of {', '.join(UTILITIES)}")
    return value


def time_range(text: str | None, default: str = "hour") -> str:
    value = text if text is not None else default
    if value not in RANGES:
        raise Invalid(f"range must be one of {', '.join(RANGES)}")
    return value


def window(text: str | None, sizes: tuple[int, ...]) -> int:
    """A configured window size given as 1m/1h/60/3600."""
    if text is None:
        return sizes[0]
    labels = {f"{s // 3600}h" if s % 3600 == 0 else f"{s // 60}m" if s % 60 == 0 else f"{s}s": s
              for s in sizes}
    if text in labels:
        return labels[text]
    if text.isascii() and text.isdigit() and int(text) in sizes:   # not "²": int() fails
        return int(text)
    raise Invalid(f"window must be one of {', '.join(labels)}")


def epoch(text: str | None, name: str) -> int | None:
    """Epoch seconds, or an ISO 8601 time with its offset (Z or +hh:mm): a time without an
    offset is refused, not guessed (the meter's zone, the server's and UTC all differ)."""
    if text is None or text == "":
        return None
    value = int(text) if DIGITS.fullmatch(text) else _iso(text, name)
    if not EARLIEST <= value <= LATEST:
        raise Invalid(f"{name} must be between {EARLIEST} and {LATEST}")
    return value


def _iso(text: str, name: str) -> int:
    """Whole epoch seconds of an ISO 8601 time with an offset (fractions round down)."""
    m = ISO.fullmatch(text)
    if not m:
        raise Invalid(f"{name} must be epoch seconds or an ISO 8601 time with an offset, "
                      "e.g. 2026-03-02T10:00:00Z")
    date, clock, offset = m.groups()
    offset = "+00:00" if offset in ("Z", "z") else "+" + offset[1:] if offset[0] == " " \
        else offset
    try:
        when = dt.datetime.fromisoformat(f"{date}T{clock}{offset}")
    except ValueError as exc:
        raise Invalid(f"{name}: {text!r} is not a valid time ({exc})") from None
    return int(when.timestamp() // 1)


def output_format(text: str | None) -> str:
    """format=json (the default) or format=csv (a download)."""
    value = "json" if text is None else text
    if value not in FORMATS:
        raise Invalid(f"format must be one of {', '.join(FORMATS)}")
    return value


def span(start: int | None, end: int | None, size: int, clock: int) -> tuple[int, int]:
    """[start, end) aligned to the window size; default: the last hour (or day) to the clock."""
    end = clock + 1 if end is None else end
    start = end - (3600 if size < 3600 else 86400) if start is None else start
    if start >= end:
        raise Invalid("from must be before to")
    first, last = start // size * size, (end - 1) // size * size
    if (last - first) // size + 1 > MAX_POINTS:
        raise Invalid(f"at most {MAX_POINTS} windows per request; narrow from/to")
    return first, last + size


def search_text(text: str | None) -> str:
    if text is None or not SEARCH.fullmatch(text.strip()):
        raise Invalid("q: 1-64 letters, digits, spaces, dots, dashes or apostrophes")
    return text.strip().lower()


def limit(text: str | None, default: int = 20, most: int = 50) -> int:
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= most:
        raise Invalid(f"limit must be 1..{most}")
    return int(text)


def month(text: str | None) -> str | None:
    """YYYY-MM (the meter's local month), or None: its newest."""
    if text is None:
        return None
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text):
        raise Invalid("month must be YYYY-MM, e.g. 2026-03")
    return text


def state(text: str) -> str:
    if text not in STATES:
        raise Invalid("state must be a two-letter code of the 50 states or DC")
    return text


def only(params: Mapping[str, str], allowed: set[str]) -> None:
    """Unknown query parameters are an error, not silently ignored (typos show up)."""
    extra = sorted(set(params) - allowed)
    if extra:
        raise Invalid(f"unknown parameter(s): {', '.join(extra)}")
