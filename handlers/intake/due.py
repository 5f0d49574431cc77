"""The deadline a post asks for, as a date relative to the message's own day:
限3天, 3个工作日内, 一周内, 12月31日前, 本周五前, 月底前, 年底前, 15号前, 明天前.
A date followed by 已/就/曾 is a past fact ("12月31日前已签协议"), not a deadline; of several
deadlines the first written wins."""

from __future__ import annotations

import calendar as months
import re
from collections.abc import Callable
from datetime import date, timedelta

from models.calendar import WorkdayCalendar

_CN = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
_N = r"(\d{1,3}|[一二两三四五六七八九十]{1,3}|半)"
_PAST = r"(?!\s*(?:已|就|曾|便|早))"
_BEFORE = r"\s*(?:之前|以前|前|为限)"

_RELATIVE = re.compile(
    rf"(?<![近过来])(?:(限期?|限时)\s*)?{_N}\s*(个)?\s*(工作日|天|日|周|星期|礼拜|月)\s*(内|之内|以内)?{_PAST}"
)
_MONTH_DAY = re.compile(
    rf"(?:(\d{{4}})\s*年\s*)?(\d{{1,2}})\s*月\s*(?:(\d{{1,2}})\s*[日号]|(底|末))(?:{_BEFORE}){_PAST}"
)
_ISO = re.compile(rf"(\d{{4}})[-/.](\d{{1,2}})[-/.](\d{{1,2}})(?:{_BEFORE}){_PAST}")
_WEEKDAY = re.compile(rf"(本|这|下个?)?\s*(?:周|星期|礼拜)([一二三四五六日天1-7])(?:{_BEFORE}){_PAST}")
_MONTH_END = re.compile(rf"(?<![\d上个])(本月|这个月|当月|下个?月|月)\s*(?:底|末){_BEFORE}?{_PAST}")
_YEAR_END = re.compile(rf"(?<!去年)(?<!前年)(?<!上年)(?<![去前上明\d])(?:今年|本年|年)\s*(?:底|末){_BEFORE}?{_PAST}")
_DAY_OF_MONTH = re.compile(rf"(?:于|在|请|需|要求|务必|争取|确保|最迟|最晚)\s*(\d{{1,2}})\s*[日号]{_BEFORE}{_PAST}")
_NEAR = re.compile(rf"(今天|今日|明天|明日|后天)\s*(?:下班)?(?:之前|以前|前|内){_PAST}")
_WEEKDAYS = "一二三四五六日"


def _number(word: str) -> int | None:
    if word.isdigit():
        return int(word)
    if word == "半":
        return None
    if word.startswith("十"):
        word = "一" + word
    total, unit = 0, 1
    if "十" in word:
        tens, _, ones = word.partition("十")
        return _CN.get(tens, 0) * 10 + (_CN.get(ones, 0) if ones else 0)
    for ch in reversed(word):
        total += _CN.get(ch, 0) * unit
        unit *= 10
    return total


def _add_months(d: date, n: int) -> date:
    month = d.month - 1 + n
    year, month = d.year + month // 12, month % 12 + 1
    return date(year, month, min(d.day, months.monthrange(year, month)[1]))


def _month_end(year: int, month: int) -> date:
    return date(year, month, months.monthrange(year, month)[1])


def _relative(m: re.Match[str], today: date, cal: WorkdayCalendar) -> date | None:
    limit, word, _ge, unit, within = m.groups()
    if not (limit or within):
        return None  # "拖了3个月" is a duration, not a deadline
    if word == "半":
        return today + timedelta(days=15) if unit == "月" else None
    n = _number(word)
    if n is None or not 0 < n <= 366:
        return None
    if unit == "工作日":
        return cal.add_workdays(today, n)
    if unit in ("天", "日"):
        return today + timedelta(days=n)
    if unit == "月":
        return _add_months(today, n) if _ge or limit else None
    return today + timedelta(weeks=n)


def _month_day(m: re.Match[str], today: date, _cal: WorkdayCalendar) -> date | None:
    year, month, day, end = m.groups()
    y, mo = int(year) if year else today.year, int(month)
    if not 1 <= mo <= 12:
        return None
    d = _month_end(y, mo) if end else _safe(y, mo, int(day))
    if d and not year and d < today:
        d = _safe(y + 1, mo, d.day)
    return d


def _iso(m: re.Match[str], _today: date, _cal: WorkdayCalendar) -> date | None:
    return _safe(*(int(g) for g in m.groups()))


def _weekday(m: re.Match[str], today: date, _cal: WorkdayCalendar) -> date | None:
    which, day = m.groups()
    target = int(day) - 1 if day.isdigit() else _WEEKDAYS.index("日" if day == "天" else day)
    if not 0 <= target <= 6:
        return None
    monday = today - timedelta(days=today.weekday())
    if which and which.startswith("下"):
        return monday + timedelta(days=7 + target)
    d = monday + timedelta(days=target)
    return d if d >= today or which else d + timedelta(days=7)


def _month_end_of(m: re.Match[str], today: date, _cal: WorkdayCalendar) -> date | None:
    if m.group(1).startswith("下"):
        nxt = _add_months(today.replace(day=1), 1)
        return _month_end(nxt.year, nxt.month)
    return _month_end(today.year, today.month)


def _year_end(_m: re.Match[str], today: date, _cal: WorkdayCalendar) -> date | None:
    return date(today.year, 12, 31)


def _day_of_month(m: re.Match[str], today: date, _cal: WorkdayCalendar) -> date | None:
    d = _safe(today.year, today.month, int(m.group(1)))
    if d and d < today:
        nxt = _add_months(today.replace(day=1), 1)
        d = _safe(nxt.year, nxt.month, d.day)
    return d


def _near(m: re.Match[str], today: date, _cal: WorkdayCalendar) -> date | None:
    return today + timedelta(days={"今": 0, "明": 1, "后": 2}[m.group(1)[0]])


def _safe(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


_RULES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str], date, WorkdayCalendar], date | None]], ...] = (
    (_RELATIVE, _relative),
    (_MONTH_DAY, _month_day),
    (_ISO, _iso),
    (_WEEKDAY, _weekday),
    (_MONTH_END, _month_end_of),
    (_YEAR_END, _year_end),
    (_DAY_OF_MONTH, _day_of_month),
    (_NEAR, _near),
)
_HINT = re.compile(r"[内前限底末]")


def deadline_in(text: str, today: date, cal: WorkdayCalendar) -> date | None:
    if not _HINT.search(text):  # most posts name no deadline: skip the patterns
        return None
    found: list[tuple[int, date]] = []
    for pattern, to_date in _RULES:
        for m in pattern.finditer(text):
            d = to_date(m, today, cal)
            if d is not None and d >= today:
                found.append((m.start(), d))
                break
    return min(found)[1] if found else None
