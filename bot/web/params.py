"""Query parameters of the API and the dashboard, checked exactly as /api/openapi.json
describes them: anything the document calls valid is answered (2xx, or 404 for a unit the
token cannot see); anything it calls invalid gets 400 with a Chinese reason."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from models.counts import Period
from models.directory import AmbiguousUnit, Directory, UnitInfo
from models.vocabulary import LEVELS, STATUSES

MAX_PAGE = 10_000
MAX_PER_PAGE = 100
PER_PAGE = 20
MAX_UNIT = 60
MAX_Q = 100
# Dates far outside any data are clamped, so that 0001-01-01 means "from the start" instead of
# overflowing the calendar arithmetic below.
EARLIEST, LATEST = date(1970, 1, 1), date(9998, 12, 31)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INT = re.compile(r"[0-9]{1,9}")


class BadRequest(ValueError):
    """400: the reason is shown to the user."""


class NotFound(LookupError):
    """404: unknown, or outside the token's subtree (the two are not told apart)."""


@dataclass(frozen=True)
class IssueQuery:
    status: str | None = None
    level: str | None = None
    unit: UnitInfo | None = None
    overdue: bool | None = None
    q: str | None = None
    start: date | None = None  # created on or after (Asia/Shanghai)
    end: date | None = None  # created on or before


def contains(scope: UnitInfo, unit: UnitInfo) -> bool:
    """Whether `unit` lies in the subtree of `scope`."""
    if scope.kind == "district" or scope.id == unit.id:
        return True
    return scope.kind == "township" and unit.kind == "village" and unit.parent_id == scope.id


def date_param(params: Mapping[str, str], name: str) -> date | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not _DATE.fullmatch(raw):
        raise BadRequest(f"{name} 应为日期 YYYY-MM-DD,收到「{raw[:20]}」")
    try:
        value = date.fromisoformat(raw)
    except ValueError as e:
        raise BadRequest(f"{name} 不是有效日期:「{raw}」") from e
    return min(max(value, EARLIEST), LATEST)


def int_param(params: Mapping[str, str], name: str, default: int, top: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not _INT.fullmatch(raw) or not 1 <= int(raw) <= top:
        raise BadRequest(f"{name} 应为 1 到 {top} 之间的整数")
    return int(raw)


def bool_param(params: Mapping[str, str], name: str) -> bool | None:
    raw = params.get(name)
    if raw is None:
        return None
    if raw not in ("true", "false"):
        raise BadRequest(f"{name} 应为 true 或 false")
    return raw == "true"


def choice_param(params: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str | None:
    raw = params.get(name)
    if raw is None:
        return None
    if raw not in choices:
        raise BadRequest(f"{name} 应为 {'/'.join(choices)} 之一")
    return raw


def text_param(params: Mapping[str, str], name: str, longest: int) -> str | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not 1 <= len(raw) <= longest:
        raise BadRequest(f"{name} 应为 1 到 {longest} 个字符")
    return raw.replace("\x00", "").strip() or None  # a NUL is refused by PostgreSQL's text


def unit_param(params: Mapping[str, str], scope: UnitInfo, directory: Directory) -> UnitInfo | None:
    name = text_param(params, "unit", MAX_UNIT)
    if name is None:
        return None
    try:
        unit = directory.resolve(name)
    except AmbiguousUnit as e:
        raise NotFound(f"单位「{name}」有重名,请写成「乡镇/村」") from e
    if unit is None or not contains(scope, unit):
        raise NotFound(f"没有单位「{name}」或不在本令牌的范围内")
    return unit


def issue_query(params: Mapping[str, str], scope: UnitInfo, directory: Directory) -> IssueQuery:
    return IssueQuery(
        status=choice_param(params, "status", STATUSES),
        level=choice_param(params, "level", LEVELS),
        unit=unit_param(params, scope, directory),
        overdue=bool_param(params, "overdue"),
        q=text_param(params, "q", MAX_Q),
        start=date_param(params, "from"),
        end=date_param(params, "to"),
    )


def paging(params: Mapping[str, str]) -> tuple[int, int]:
    return int_param(params, "page", 1, MAX_PAGE), int_param(params, "per_page", PER_PAGE, MAX_PER_PAGE)


def period(params: Mapping[str, str], today: date) -> Period:
    """from/to, both inclusive; by default this year so far (as 统计 with no words). A `from`
    after `to` is an empty period: every count is 0."""
    start, end = date_param(params, "from"), date_param(params, "to")
    if start is None and end is None:
        return Period(date(today.year, 1, 1), date(today.year, 12, 31), f"{today.year}年")
    end = end or max(today, start or today)
    start = start or date(end.year, 1, 1)
    return Period(start, end, period_label(start, end))


def period_label(start: date, end: date) -> str:
    """As 统计 names its periods: 2020年, 2020年5月, or the two dates."""
    if start.year == end.year and (start.month, start.day, end.month, end.day) == (1, 1, 12, 31):
        return f"{start.year}年"
    next_day = end + timedelta(days=1)
    if start.day == 1 and next_day.day == 1 and (start.year, start.month) == (end.year, end.month):
        return f"{start.year}年{start.month}月"
    return f"{start.isoformat()}至{end.isoformat()}"
