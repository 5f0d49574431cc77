"""Counting, exactly as PRODUCT §2, as SQL over the events. Every count is of distinct issues
(an issue returned or reopened is never counted twice); duplicates closed by 合并 are left out.

- 村 排摸: created at village level in P.           办结: resolved while at village level in P.
- 乡镇 提交: first entered township level in P.      办结: resolved while at township level in P.
- 区 交办: first assigned at district level in P (周二无会日 when that assignment was made on a
  Tuesday or tagged).  化解: of those, resolved at district level as of the end of P, or now
  while P has not ended."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.sql import Select
from sqlmodel import Session

from models.clock import day_start, local
from models.directory import UnitInfo
from models.events import STATUS_KINDS
from models.rules import in_subtree_clause
from models.tables import Issue, IssueEvent

E = IssueEvent.__table__.c  # type: ignore[attr-defined]
I = Issue.__table__.c  # type: ignore[attr-defined]  # noqa: E741


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


def _scoped(query: Select, scope: UnitInfo | None) -> Select:
    """Limit to issues in the unit's subtree and leave out closed duplicates."""
    query = query.where(E.issue_id.in_(_issue_ids(scope)))
    return query


def _issue_ids(scope: UnitInfo | None) -> Select:
    q = select(I.id).where(I.status != "closed")
    return q if scope is None else q.where(in_subtree_clause(scope))


def _count_in(session: Session, kinds: tuple[str, ...], level: str, p: Period, scope: UnitInfo | None) -> int:
    q = select(func.count(func.distinct(E.issue_id))).where(
        E.kind.in_(kinds), E.level == level, E.at >= p.start_at, E.at < p.end_at
    )
    return session.execute(_scoped(q, scope)).scalar_one()


def _first_entry(session: Session, kinds: tuple[str, ...], level: str, p: Period, scope: UnitInfo | None) -> int:
    first = _scoped(
        select(E.issue_id, func.min(E.at).label("first_at"))
        .where(E.kind.in_(kinds), E.level == level)
        .group_by(E.issue_id),
        scope,
    ).subquery()
    q = select(func.count()).select_from(first).where(first.c.first_at >= p.start_at, first.c.first_at < p.end_at)
    return session.execute(q).scalar_one()


def count_levels(session: Session, period: Period, scope: UnitInfo | None, now: datetime) -> LevelCounts:
    # Exclusive bound: the end of P, or just after now (createAt has millisecond precision, so a
    # resolution in the very millisecond of the question still counts).
    cutoff = min(period.end_at, local(now) + timedelta(milliseconds=1))
    # First district assignment of each issue, with its Tuesday flag.
    first_seq = _scoped(
        select(E.issue_id, func.min(E.seq).label("seq"))
        .where(E.kind == "assigned", E.level == "district")
        .group_by(E.issue_id),
        scope,
    ).subquery()
    first = (
        select(E.issue_id, E.tuesday)
        .join(first_seq, and_(E.issue_id == first_seq.c.issue_id, E.seq == first_seq.c.seq))
        .where(E.at >= period.start_at, E.at < period.end_at)
    ).subquery()
    # The last status change of each of those issues before the cutoff: resolved at district?
    last_seq = (
        select(E.issue_id, func.max(E.seq).label("seq"))
        .where(E.kind.in_(STATUS_KINDS), E.at < cutoff, E.issue_id.in_(select(first.c.issue_id)))
        .group_by(E.issue_id)
    ).subquery()
    resolved = (
        select(E.issue_id)
        .join(last_seq, and_(E.issue_id == last_seq.c.issue_id, E.seq == last_seq.c.seq))
        .where(E.kind == "resolved", E.level == "district")
    )
    rows = session.execute(
        select(first.c.tuesday, first.c.issue_id.in_(resolved).label("done"), func.count()).group_by(
            first.c.tuesday, "done"
        )
    ).all()
    tally = {(bool(t), bool(d)): n for t, d, n in rows}
    tue_a = tally.get((True, True), 0) + tally.get((True, False), 0)
    reg_a = tally.get((False, True), 0) + tally.get((False, False), 0)
    tue_r, reg_r = tally.get((True, True), 0), tally.get((False, True), 0)
    return LevelCounts(
        district_assigned=tue_a + reg_a,
        district_resolved=tue_r + reg_r,
        tuesday_assigned=tue_a,
        tuesday_resolved=tue_r,
        regular_assigned=reg_a,
        regular_resolved=reg_r,
        township_entered=_first_entry(session, ("created", "escalated"), "township", period, scope),
        township_resolved=_count_in(session, ("resolved",), "township", period, scope),
        village_entered=_first_entry(session, ("created",), "village", period, scope),
        village_resolved=_count_in(session, ("resolved",), "village", period, scope),
    )
