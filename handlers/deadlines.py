"""Deadline expressions of 交办 and 延期: 限N天, 限N个工作日, 截止M月D日, 截止YYYY-MM-DD."""

from __future__ import annotations

import re
from datetime import date, timedelta

from models.calendar import WorkdayCalendar

_LIMIT = re.compile(r"限\s*(\d{1,3})\s*(个)?\s*(工作日|天|日)")
_MONTH_DAY = re.compile(r"截[止至]\s*(?:(\d{4})\s*年)?\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]")
_ISO = re.compile(r"截[止至]\s*(\d{4})-(\d{1,2})-(\d{1,2})")
_DAYS = re.compile(r"(\d{1,3})\s*(个)?\s*(工作日|天|日)")
MAX_DAYS = 365


class DeadlineError(ValueError):
    pass


def add_days(start: date, n: int, workdays: bool, calendar: WorkdayCalendar) -> date:
    return calendar.add_workdays(start, n) if workdays else start + timedelta(days=n)


def parse_deadline(text: str, today: date, calendar: WorkdayCalendar) -> tuple[date | None, str]:
    """The deadline a text names (None when none) and the text without that expression."""
    if m := _LIMIT.search(text):
        n = int(m.group(1))
        if not 1 <= n <= MAX_DAYS:
            raise DeadlineError(m.group(0))
        return add_days(today, n, m.group(3) == "工作日", calendar), _cut(text, m)
    for pattern in (_ISO, _MONTH_DAY):
        if m := pattern.search(text):
            year, month, day = m.groups()
            try:
                d = date(int(year) if year else today.year, int(month), int(day))
            except ValueError as e:
                raise DeadlineError(m.group(0)) from e
            if not year and d < today:
                d = d.replace(year=today.year + 1)
            if d < today:
                raise DeadlineError(m.group(0))
            return d, _cut(text, m)
    return None, text


def parse_days(text: str) -> tuple[int, bool, str] | None:
    """`N个工作日` / `N天` of 延期: (N, in working days, the rest as the reason)."""
    m = _DAYS.search(text)
    if not m or not 1 <= int(m.group(1)) <= MAX_DAYS:
        return None
    return int(m.group(1)), m.group(3) == "工作日", _cut(text, m)


def _cut(text: str, m: re.Match[str]) -> str:
    return (text[: m.start()] + " " + text[m.end() :]).strip()
