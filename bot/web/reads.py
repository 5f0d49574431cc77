"""Reads of issues for a token's subtree. Everything here takes a session and returns rows;
nothing writes."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import ColumnElement, func, not_, or_
from sqlmodel import Session, col, select

from bot.web.params import IssueQuery
from models.clock import day_start
from models.directory import UnitInfo
from models.rules import in_subtree_clause, overdue_clause
from models.tables import Issue, PhotoDownload


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def clauses(scope: UnitInfo, query: IssueQuery, today: date) -> list[ColumnElement[bool]]:
    where = [in_subtree_clause(scope)]
    if query.unit is not None:
        where.append(in_subtree_clause(query.unit))
    if query.status:
        where.append(col(Issue.status) == query.status)
    if query.level:
        where.append(col(Issue.level) == query.level)
    if query.overdue is not None:
        where.append(overdue_clause(today) if query.overdue else not_(overdue_clause(today)))
    if query.q:
        pattern = _like(query.q)
        where.append(or_(col(Issue.title).like(pattern, escape="\\"), col(Issue.text).like(pattern, escape="\\")))
    if query.start:
        where.append(col(Issue.created_at) >= day_start(query.start))
    if query.end:
        where.append(col(Issue.created_at) < day_start(query.end + timedelta(days=1)))
    return where


def page_of(
    session: Session, scope: UnitInfo, query: IssueQuery, today: date, page: int, per_page: int
) -> tuple[list[Issue], int]:
    """One page, newest first (as 列表 in chat), and the total."""
    where = clauses(scope, query, today)
    total = session.exec(select(func.count()).select_from(Issue).where(*where)).one()
    rows = session.exec(
        select(Issue).where(*where).order_by(col(Issue.id).desc()).offset((page - 1) * per_page).limit(per_page)
    )
    return list(rows), total


def one(session: Session, scope: UnitInfo, issue_id: int) -> Issue | None:
    """The issue, or None when it does not exist or lies outside the scope (both are 404)."""
    return session.exec(select(Issue).where(col(Issue.id) == issue_id, in_subtree_clause(scope))).first()


def overdue(session: Session, scope: UnitInfo, today: date, limit: int) -> tuple[list[Issue], int]:
    """Open issues past their deadline, the longest overdue first. The page's numbers are chosen
    from the (status, deadline) index alone and only those rows are loaded: asked for whole rows,
    PostgreSQL fetched every overdue case's row to sort them (150,000 at 1M cases: 0.3–0.5 s)."""
    where = [in_subtree_clause(scope), overdue_clause(today)]
    total = session.exec(select(func.count()).select_from(Issue).where(*where)).one()
    order = (col(Issue.deadline), col(Issue.id))
    first = list(session.exec(select(Issue.id).where(*where).order_by(*order).limit(limit)))
    if not first:
        return [], total
    return list(session.exec(select(Issue).where(col(Issue.id).in_(first)).order_by(*order))), total


def photos_of(session: Session, issue_id: int) -> list[PhotoDownload]:
    """The pictures queued for an issue, in the order they arrived (the caller checked the scope)."""
    query = select(PhotoDownload).where(col(PhotoDownload.issue_id) == issue_id).order_by(col(PhotoDownload.id))
    return list(session.exec(query).all())


def stored_photo(session: Session, scope: UnitInfo, issue_id: int, sha256: str) -> PhotoDownload | None:
    """A kept picture of an issue inside the scope, or None (not found and not allowed are both 404)."""
    return session.exec(
        select(PhotoDownload)
        .join(Issue, col(Issue.id) == col(PhotoDownload.issue_id))
        .where(
            col(PhotoDownload.issue_id) == issue_id,
            col(PhotoDownload.sha256) == sha256,
            col(PhotoDownload.status) == "stored",
            in_subtree_clause(scope),
        )
    ).first()
