"""Periods (year, quarter, month) as sortable keys, and the time bounds users type.

Keys: '2021', '2021-Q3', '2021-07'. They sort in time order as strings, and
`shift` steps between them so that a period with no activity is still a
period (a count of 0 is data: growth from 0 is not "no previous period").
"""

from __future__ import annotations

import re
from datetime import date

PERIODS = ("year", "quarter", "month")
# How many periods back "the same period a year earlier" is.
YEAR_STEPS = {"year": 1, "quarter": 4, "month": 12}

_BOUND = re.compile(r"(\d{4})(?:-(?:Q([1-4])|(\d{1,2}))(?:-(\d{1,2}))?)?(?:[Tt ].*)?\Z")


def period_key(day: date, period: str) -> str:
    if period == "year":
        return f"{day.year:04d}"
    if period == "quarter":
        return f"{day.year:04d}-Q{(day.month - 1) // 3 + 1}"
    if period == "month":
        return f"{day.year:04d}-{day.month:02d}"
    raise ValueError(f"unknown period {period!r}; choose from {', '.join(PERIODS)}")


def _index(key: str, period: str) -> int:
    year = int(key[:4])
    if period == "year":
        return year
    if period == "quarter":
        return year * 4 + int(key[6]) - 1
    return year * 12 + int(key[5:7]) - 1


def _key(index: int, period: str) -> str:
    if period == "year":
        return f"{index:04d}"
    if period == "quarter":
        return f"{index // 4:04d}-Q{index % 4 + 1}"
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def shift(key: str, period: str, steps: int) -> str:
    """The period `steps` after `key` (negative: before)."""
    return _key(_index(key, period) + steps, period)


def period_range(first: str, last: str, period: str) -> list[str]:
    """Every period from `first` to `last`, both included."""
    return [_key(i, period) for i in range(_index(first, period), _index(last, period) + 1)]


def parse_bound(text: str, *, end: bool = False) -> date:
    """'2020', '2020-Q2', '2020-06', '2020-06-15' or a timestamp -> a day.

    As a start (`--since`) a period means its first day; as an end (`--until`,
    inclusive) its last day, so `--since 2020 --until 2021` covers two full years.
    """
    m = _BOUND.match(text.strip())
    if not m:
        raise ValueError(f"not a date: {text!r} (use 2020, 2020-Q2, 2020-06 or 2020-06-15)")
    year, quarter, month, day = m.groups()
    y = int(year)
    if day is not None:
        return date(y, int(month), int(day))
    if quarter is not None:
        first_month = (int(quarter) - 1) * 3 + 1
        return _month_end(y, first_month + 2) if end else date(y, first_month, 1)
    if month is not None:
        return _month_end(y, int(month)) if end else date(y, int(month), 1)
    return date(y, 12, 31) if end else date(y, 1, 1)


def _month_end(year: int, month: int) -> date:
    if month == 12:
        return date(year, 12, 31)
    return date.fromordinal(date(year, month + 1, 1).toordinal() - 1)
