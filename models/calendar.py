"""Working days: Chinese public holidays and adjusted workdays (调休) from chinese-calendar,
with local overrides for days it does not know or the district decides otherwise.

The overrides come from the optional `calendar:` section of the org file:

    calendar:
      holidays: [2027-01-01, "2027-02-06~2027-02-12"]   # days off (also local ones)
      workdays: [2027-02-14]                            # adjusted working days (调休上班)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import chinese_calendar

MAX_RANGE_DAYS = 366


class CalendarError(ValueError):
    """A bad `calendar:` section; the message says which entry and why, in Chinese."""


@dataclass(frozen=True)
class CalendarConfig:
    """The org file's `calendar:` section, parsed: date -> True (a workday) / False (a day off)."""

    overrides: Mapping[date, bool] = field(default_factory=dict)


class WorkdayCalendar:
    def __init__(self, overrides: Mapping[date, bool] | None = None) -> None:
        # date -> True (a workday) / False (a day off); wins over the package.
        self.overrides = dict(overrides or {})

    @classmethod
    def from_config(cls, config: CalendarConfig | None) -> WorkdayCalendar:
        """The calendar with the overrides of the org file's `calendar:` section."""
        return cls(config.overrides if config else None)

    def is_workday(self, d: date) -> bool:
        if d in self.overrides:
            return self.overrides[d]
        try:
            return chinese_calendar.is_workday(d)
        except NotImplementedError:  # a year the package does not cover yet
            return d.weekday() < 5

    def next_workday(self, d: date) -> date:
        """The first working day after d."""
        return self.add_workdays(d, 1)

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


def parse_calendar(section: Any) -> CalendarConfig:
    """The `calendar:` section (None when the file has none). Raises CalendarError on a bad entry."""
    return CalendarConfig(parse_overrides(section))


def parse_overrides(section: Any) -> dict[date, bool]:
    """The `calendar:` section as date -> is a workday. Raises CalendarError on a bad entry."""
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise CalendarError("calendar 应为映射,如 {holidays: [2027-01-01], workdays: [2027-02-14]}")
    unknown = sorted(str(k) for k in section if k not in ("holidays", "workdays"))
    if unknown:
        raise CalendarError(f"calendar 只能有 holidays 和 workdays,不认识「{'、'.join(unknown)}」")
    result: dict[date, bool] = {}
    for key, workday in (("holidays", False), ("workdays", True)):
        entries = section.get(key) or []
        if not isinstance(entries, list):
            raise CalendarError(f"calendar.{key} 应为日期列表")
        for entry in entries:
            for d in _days(entry, key):
                if result.get(d, workday) != workday:
                    raise CalendarError(f"{d.isoformat()} 同时写在 holidays 和 workdays 里")
                result[d] = workday
    return result


def _days(entry: Any, key: str) -> list[date]:
    """A date (YAML reads an unquoted 2027-01-01 as one) or a range `2027-02-06~2027-02-12`."""
    if isinstance(entry, date) and not isinstance(entry, datetime):
        return [entry]
    text = str(entry).strip()
    start_text, sep, end_text = text.replace("～", "~").partition("~")
    try:
        start = date.fromisoformat(start_text.strip())
        end = date.fromisoformat(end_text.strip()) if sep else start
    except ValueError as e:
        raise CalendarError(f"calendar.{key} 中的「{text}」不是日期,应写成 2027-01-01 或 2027-02-06~2027-02-12") from e
    if end < start or (end - start).days >= MAX_RANGE_DAYS:
        raise CalendarError(f"calendar.{key} 中的日期范围「{text}」无效")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]
