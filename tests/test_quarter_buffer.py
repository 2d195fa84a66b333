"""QuarterBuffer begins a meter's quarter without asking its day when the ledger told it what
the day holds (QuarterBuffer._begin). Told or not, it must hand out the same quarters: a
buffer the ledger tells and one it never tells are fed the same windows and compared."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from auth_kappa.insights.meters import MeterIndex
from auth_kappa.insights.quarters import QUARTER, QuarterBuffer

METERS = 4
DAY = 4 * QUARTER   # a short "day": quarters turn it over often


class Days:
    """What a ledger's open days hold, by the rule DailyLedger._take keeps."""

    def __init__(self) -> None:
        self.open: dict[int, tuple[str, int]] = {}

    def accepts(self, row: int, date: str, start: int) -> bool:
        day = self.open.get(row)
        return day is None or date > day[0] or (date == day[0] and start > day[1])

    def take(self, row: int, date: str, last: int) -> tuple[str, int]:
        day = self.open.get(row)
        if day is None or date > day[0]:
            day = (date, last)
        elif date == day[0]:
            day = (date, max(day[1], last))
        self.open[row] = day
        return day


def _date(start: int) -> str:
    return f"d{start // DAY:04d}"


# a batch: windows (meter, minute) at or after a moving clock, some held again or older
batches = st.lists(st.lists(st.tuples(st.integers(0, METERS - 1), st.integers(-20, 40)),
                            max_size=12), min_size=1, max_size=25)


@given(batches, st.lists(st.integers(0, 3), min_size=25, max_size=25),
       st.lists(st.integers(0, 60), min_size=25, max_size=25),
       st.lists(st.booleans(), min_size=25, max_size=25))
@settings(max_examples=300, deadline=None)
def test_a_told_buffer_hands_out_the_same_quarters(batches: list, most: list, upto: list,
                                                   restart: list) -> None:
    meters = MeterIndex()
    rows = meters.rows(np.arange(1, METERS + 1, dtype=np.uint64),
                       np.arange(1, METERS + 1, dtype=np.uint64))
    told, plain = QuarterBuffer(meters), QuarterBuffer(meters)
    books = (Days(), Days())   # the told one's days, the plain one's
    clock = 0
    for i, batch in enumerate(batches):
        clock += 60 * (i % 3)
        if restart[i]:   # what was filling is lost; the days come back from the store
            told, plain = QuarterBuffer(meters), QuarterBuffer(meters)
            for row_, (date, last) in books[0].open.items():
                told.told(row_, date, last)
        row = rows[np.array([m for m, _ in batch], np.int64)]
        starts = np.array([max(0, clock + 60 * k) for _, k in batch], np.int64) // 60 * 60
        dates = np.array([_date(int(s)) for s in starts], object)
        periods, values = starts // 3600 % 3, (starts % 7 + 1).astype(float)
        parts = np.zeros(len(batch), np.int64)
        handed = []
        for buf, book in zip((told, plain), books, strict=True):
            out = buf.add(row, dates, starts, periods, values, parts, book.accepts)
            # the ledger takes what add finished, then some that are over (advance)
            out += buf.finished({0: float(clock - 60 * upto[i])}, most[i])
            for q in out:
                date, last = book.take(q.row, q.date, q.last)
                if buf is told:
                    buf.told(q.row, date, last)
            handed.append([(q.row, q.date, q.period, q.use, q.last) for q in out])
        assert handed[0] == handed[1]
    for name in ("start", "date", "period", "use", "last", "part"):
        assert np.array_equal(getattr(told, name), getattr(plain, name)), name
    assert books[0].open == books[1].open
