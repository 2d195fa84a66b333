"""The unit-cost benchmark's own parsing: its flags give one line on bad input, and its
scan of the worker logs counts store errors and nothing else (no services needed)."""

from __future__ import annotations

import pytest

from benchmarks.bench_unit_costs import log_problems, parse_counts


def test_counts_parse_and_bad_ones_are_one_line():
    assert parse_counts("1,2,4", "--workers") == [1, 2, 4]
    assert parse_counts("3,1,3", "--redis", allowed=(1, 3)) == [3, 1]
    for text, allowed in (("1,x", None), ("0", None), ("2", (1, 3)), ("", None)):
        with pytest.raises(SystemExit) as exc:
            parse_counts(text, "--redis", allowed)
        assert "--redis" in str(exc.value) and "\n" not in str(exc.value)


def test_log_scan_counts_store_errors_only():
    lines = ["[2026-12-01 02:30:00] [1] [WARNING] assigned [('gas', 0)]",
             "redis.exceptions.ResponseError: CROSSSLOT Keys in request don't hash to the same slot",
             "[WARNING] store failure (ConnectionError: reset): dropping memory",
             "Traceback (most recent call last):",
             "[INFO] archive roll closed: 14,000 rows"]
    assert log_problems("\n".join(lines)) == lines[1:4]
