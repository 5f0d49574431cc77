"""Working days: Chinese public holidays and adjusted workdays (调休) from chinese-calendar,
with local overrides for days it does not know or the district decides otherwise."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta

import chinese_calendar


class WorkdayCalendar:
    def __init__(self, overrides: Mapping[date, bool] | None = None) -> None:
        # date -> True (a workday) / False (a day off); wins over the package.
        self.overrides = dict(overrides or {})

    def is_workday(self, d: date) -> bool:
        if d in self.overrides:
            return self.overrides[d]
        try:
            return chinese_calendar.is_workday(d)
        except NotImplementedError:  # a year the package does not cover yet
            return d.weekday() < 5

    def add_workdays(self, start: date, n: int) -> date:
        """The n-th working day after start (start itself not counted)."""
        d = start
        while n > 0:
            d += timedelta(days=1)
            if self.is_workday(d):
                n -= 1
        return d

    def workdays_between(self, start: date, end: date) -> int:
        """Working days in (start, end]; negative when end is before start."""
        if end < start:
            return -self.workdays_between(end, start)
        return sum(1 for i in range(1, (end - start).days + 1) if self.is_workday(start + timedelta(days=i)))
