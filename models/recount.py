"""Counting from scratch over the events, exactly as PRODUCT §2 words it: the oracle that the kept
counts (models.facts, read by models.counts) are checked against, by the tests. It scans every
event of every issue, so it costs what the whole history costs: never call it from a request.

- 村 排摸: created at village level in P.           办结: resolved while at village level in P.
- 乡镇 提交: first entered township level in P.      办结: resolved while at township level in P.
- 区 交办: first assigned at district level in P (周二无会日 when that assignment was made on a
  Tuesday or tagged).  化解: of those, resolved at district level as of the end of P, or now
  while P has not ended."""

from __future__ import annotations

from bisect import bisect_right
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.sql import Select
from sqlmodel import Session

from models.clock import local
from models.counts import LevelCounts, Period, cutoff_of
from models.directory import UnitInfo
from models.events import STATUS_KINDS
from models.rules import in_subtree_clause
from models.tables import Issue, IssueEvent

E = IssueEvent.__table__.c  # type: ignore[attr-defined]
I = Issue.__table__.c  # type: ignore[attr-defined]  # noqa: E741


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


def recount_levels(session: Session, period: Period, scope: UnitInfo | None, now: datetime) -> LevelCounts:
    cutoff = cutoff_of(period, now)
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


def recount_resolved(session: Session, scope: UnitInfo | None, p: Period) -> int:
    """Issues with a 办结 event in P (the weekly digest's 办结), from the events."""
    q = select(func.count(func.distinct(E.issue_id))).where(E.kind == "resolved", E.at >= p.start_at, E.at < p.end_at)
    return session.execute(_scoped(q, scope)).scalar_one()


def recount_resolved_weeks(
    session: Session, scope: UnitInfo | None, bounds: list[datetime], now: datetime
) -> list[int]:
    """The dashboard trend's resolved cases per week (bounds: the weeks' starts and the end),
    from the events: each issue once, at its earliest resolution in the chart that counts (a
    办结 below the district, or a 化解 no status change has ended by the cutoff)."""
    cutoff = local(now) + timedelta(milliseconds=1)
    rows = session.execute(
        _scoped(select(E.issue_id, E.seq, E.kind, E.level, E.at), scope).where(E.kind.in_(STATUS_KINDS))
    ).all()
    moves: dict[int, list[tuple[int, datetime]]] = {}
    for issue_id, seq, _kind, _level, at in rows:
        moves.setdefault(issue_id, []).append((seq, at))
    first: dict[int, datetime] = {}
    for issue_id, seq, kind, level, at in rows:
        if kind != "resolved" or not bounds[0] <= at < bounds[-1]:
            continue
        ended = any(s > seq and a < cutoff for s, a in moves[issue_id])
        if level == "district" and ended:
            continue
        first[issue_id] = min(first.get(issue_id, at), at)
    weeks = [0] * (len(bounds) - 1)
    for at in first.values():
        weeks[bisect_right(bounds, at) - 1] += 1
    return weeks
