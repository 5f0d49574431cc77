"""Counting, exactly as PRODUCT §2, read from the counts kept as the events happen
(models.facts; models.recount is the same over the raw events, for the tests). Every count is of
distinct issues (an issue returned or reopened is never counted twice); duplicates closed by
合并 are left out.

- 村 排摸: created at village level in P.           办结: resolved while at village level in P.
- 乡镇 提交: first entered township level in P.      办结: resolved while at township level in P.
- 区 交办: first assigned at district level in P (周二无会日 when that assignment was made on a
  Tuesday or tagged).  化解: of those, resolved at district level as of the end of P, or now
  while P has not ended."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, false, func, or_, select, true
from sqlmodel import Session

from models.clock import day_start, local
from models.directory import UnitInfo
from models.facts import F, Fact
from models.vocabulary import UnitKind

PERIOD_FACTS = (
    Fact.VILLAGE_ENTERED,
    Fact.TOWNSHIP_ENTERED,
    Fact.VILLAGE_RESOLVED,
    Fact.TOWNSHIP_RESOLVED,
    Fact.DISTRICT_ASSIGNED,
)


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive
    label: str

    @property
    def start_at(self) -> datetime:
        return day_start(self.start)

    @property
    def end_at(self) -> datetime:  # exclusive
        return day_start(self.end + timedelta(days=1))


class PeriodError(ValueError):
    pass


def parse_period(text: str, today: date) -> Period:
    """本周/上周/本月/上月/本年(今年)/去年/2020/2020-03/2020-01-01~2020-06-30; empty = 本年."""
    t = text.strip().replace(" ", "")
    if t in ("", "本年", "今年"):
        return Period(date(today.year, 1, 1), date(today.year, 12, 31), f"{today.year}年")
    if t == "去年":
        return Period(date(today.year - 1, 1, 1), date(today.year - 1, 12, 31), f"{today.year - 1}年")
    if t in ("本周", "上周"):
        monday = today - timedelta(days=today.weekday()) - timedelta(days=7 if t == "上周" else 0)
        return Period(monday, monday + timedelta(days=6), t)
    if t in ("本月", "上月"):
        first = today.replace(day=1)
        if t == "上月":
            first = (first - timedelta(days=1)).replace(day=1)
        return _month(first.year, first.month)
    if m := re.fullmatch(r"(\d{4})年?", t):
        year = int(m.group(1))
        _check_year(year)
        return Period(date(year, 1, 1), date(year, 12, 31), f"{year}年")
    if m := re.fullmatch(r"(\d{4})[-年/.](\d{1,2})月?", t):
        _check_year(int(m.group(1)))
        if not 1 <= int(m.group(2)) <= 12:
            raise PeriodError(t)
        return _month(int(m.group(1)), int(m.group(2)))
    if m := re.fullmatch(r"(\d{4}-\d{1,2}-\d{1,2})(?:~|至|到|--)(\d{4}-\d{1,2}-\d{1,2})", t):
        try:
            start, end = (date(*map(int, s.split("-"))) for s in m.groups())
        except ValueError as e:
            raise PeriodError(t) from e
        if end < start:
            raise PeriodError(t)
        return Period(start, end, f"{start.isoformat()}至{end.isoformat()}")
    raise PeriodError(t)


def _check_year(year: int) -> None:
    if not 2000 <= year <= 2100:
        raise PeriodError(str(year))


def _month(year: int, month: int) -> Period:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    return Period(date(year, month, 1), nxt - timedelta(days=1), f"{year}年{month}月")


@dataclass(frozen=True)
class LevelCounts:
    district_assigned: int
    district_resolved: int
    tuesday_assigned: int
    tuesday_resolved: int
    regular_assigned: int
    regular_resolved: int
    township_entered: int
    township_resolved: int
    village_entered: int
    village_resolved: int

    def paragraph(self) -> str:
        return (
            f'区级层面累计交办"两难"问题{self.district_assigned}件,已化解{self.district_resolved}件。'
            f'其中,"周二无会日"办理件{self.tuesday_assigned}件,已化解{self.tuesday_resolved}件;'
            f"平时交办{self.regular_assigned}件,已化解{self.regular_resolved}件。"
            f"乡镇(街道)层面累计提交{self.township_entered}件,办结{self.township_resolved}件;"
            f"村(社区)层面累计排摸{self.village_entered}件,办结{self.village_resolved}件。"
        )

    def lines(self) -> list[str]:
        """The paragraph as three lines that fit a phone (区级 / 乡镇 / 村); the paragraph itself
        stays for reports (统计 … 原文, liandong report)."""
        return [
            f"区级 交办{self.district_assigned} · 化解{self.district_resolved}"
            f"(周二无会日 {self.tuesday_assigned}/{self.tuesday_resolved})",
            f"乡镇 提交{self.township_entered} · 办结{self.township_resolved}",
            f"村级 排摸{self.village_entered} · 办结{self.village_resolved}",
        ]


def cutoff_of(period: Period, now: datetime) -> datetime:
    """Exclusive bound of 化解: the end of P, or just after now (createAt has millisecond
    precision, so a resolution in the very millisecond of the question still counts)."""
    return min(period.end_at, local(now) + timedelta(milliseconds=1))


def scope_clause(scope: UnitInfo | None, table: Any = None) -> ColumnElement[bool]:
    """models.rules.in_subtree_clause over the kept rows' own unit columns."""
    c = (table if table is not None else F).c
    if scope is None or scope.kind == UnitKind.DISTRICT:
        return true()
    columns: dict[str, Any] = {
        UnitKind.TOWNSHIP: c.township_id,
        UnitKind.VILLAGE: c.village_id,
        UnitKind.DEPARTMENT: c.department_id,
    }
    column = columns.get(scope.kind)
    return column == scope.id if column is not None else false()


def first_in(table: Any, period: Period) -> ColumnElement[bool]:
    """Rows in P that are their issue's first of their kind in P (one per issue)."""
    c = table.c
    start = period.start_at
    return and_(c.at >= start, c.at < period.end_at, or_(c.prev_at.is_(None), c.prev_at < start))


def count_levels(session: Session, period: Period, scope: UnitInfo | None, now: datetime) -> LevelCounts:
    """The §2 counts of P in the scope, read from the kept rows (models.facts): an indexed range
    scan of P, and one of the district resolutions before the cutoff (the fewest rows)."""
    cutoff = cutoff_of(period, now)
    # Grouped by kind alone (the index order: no sort), the Tuesday ones summed alongside.
    tuesdays = func.sum(case((F.c.tuesday, 1), else_=0))
    per_kind = {
        kind: (n, int(tue or 0))
        for kind, n, tue in session.execute(
            select(F.c.kind, func.count(), tuesdays)
            .where(F.c.kind.in_(PERIOD_FACTS), first_in(F, period), scope_clause(scope))
            .group_by(F.c.kind)
        ).all()
    }
    # Of the issues first assigned at district in P (a district resolution carries that
    # assignment's time in prev_at and its flag), those whose state at the cutoff is a district
    # resolution: at most one such row per issue, as its validity intervals do not overlap.
    c = F.c
    resolved, tue_r = session.execute(
        select(func.count(), tuesdays).where(
            c.kind == Fact.DISTRICT_RESOLVED,
            c.at < cutoff,
            or_(c.until.is_(None), c.until >= cutoff),
            c.prev_at >= period.start_at,
            c.prev_at < period.end_at,
            scope_clause(scope),
        )
    ).one()
    assigned, tue_a = per_kind.get(Fact.DISTRICT_ASSIGNED, (0, 0))
    tue_r = int(tue_r or 0)
    reg_a, reg_r = assigned - tue_a, resolved - tue_r
    return LevelCounts(
        district_assigned=tue_a + reg_a,
        district_resolved=tue_r + reg_r,
        tuesday_assigned=tue_a,
        tuesday_resolved=tue_r,
        regular_assigned=reg_a,
        regular_resolved=reg_r,
        township_entered=per_kind.get(Fact.TOWNSHIP_ENTERED, (0, 0))[0],
        township_resolved=per_kind.get(Fact.TOWNSHIP_RESOLVED, (0, 0))[0],
        village_entered=per_kind.get(Fact.VILLAGE_ENTERED, (0, 0))[0],
        village_resolved=per_kind.get(Fact.VILLAGE_RESOLVED, (0, 0))[0],
    )


RESOLVED_FACTS = (Fact.VILLAGE_RESOLVED, Fact.TOWNSHIP_RESOLVED, Fact.DISTRICT_RESOLVED)


def resolved_in(session: Session, scope: UnitInfo | None, period: Period) -> int:
    """Issues resolved (办结 at any level) in P, each once: the weekly digest's 办结."""
    c = F.c
    q = select(func.count(func.distinct(c.issue_id))).where(
        c.kind.in_(RESOLVED_FACTS), c.at >= period.start_at, c.at < period.end_at, scope_clause(scope)
    )
    return session.execute(q).scalar_one()
