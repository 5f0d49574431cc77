"""What the jobs read: Tuesday cases, deadlines for the ladder, a unit's week. Like models.queries,
these take a session and never commit; they live here because only the jobs use them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, Integer, any_, bindparam, func, or_, true
from sqlmodel import Session, col, select

from models.counts import LevelCounts, Period, count_levels, resolved_in
from models.directory import UnitInfo
from models.rules import in_subtree_clause, open_clause, overdue_clause
from models.tables import Issue, IssueEvent, LadderStep


def tuesday_cases(session: Session) -> list[Issue]:
    """District issues, open or resolved, whose current assignment is a 周二无会日 one (made on a
    Tuesday or tagged: the event's flag, as 统计 counts them), by owner then number."""
    last = (
        select(IssueEvent.issue_id, func.max(IssueEvent.seq).label("seq"))
        .where(IssueEvent.kind == "assigned")
        .group_by(col(IssueEvent.issue_id))
        .subquery()
    )
    q = (
        select(Issue)
        .join(last, last.c.issue_id == Issue.id)
        .join(IssueEvent, (col(IssueEvent.issue_id) == Issue.id) & (col(IssueEvent.seq) == last.c.seq))
        .where(
            Issue.level == "district",
            col(Issue.status).in_(["assigned", "resolved"]),
            col(Issue.owner_id).is_not(None),
            IssueEvent.tuesday == true(),
            IssueEvent.level == "district",
        )
        .order_by(col(Issue.owner_id), col(Issue.id))
    )
    return list(session.exec(q).all())


def near_deadlines(session: Session, until: date, skip_settled: bool = True) -> list[tuple[int, date]]:
    """What the overdue ladder can act on, as (id, deadline): assigned issues with a deadline on
    or before `until` (a later deadline reaches no step yet), less, with skip_settled, those
    whose late steps are all taken for their current deadline (ladder_settled: nothing left to
    send). Read from ix_issue_status_deadline_ladder alone (SQLite's index carries the rowid,
    PostgreSQL's INCLUDEs id): no issue row is read for the cases the ladder is done with."""
    near: list[ColumnElement[bool]] = [
        col(Issue.status) == "assigned",
        col(Issue.deadline).is_not(None),
        col(Issue.deadline) <= until,
    ]
    if skip_settled:
        settled = col(Issue.ladder_settled)
        near.append(or_(settled.is_(None), settled != col(Issue.deadline)))
    q = select(col(Issue.id), col(Issue.deadline)).where(*near).order_by(col(Issue.id))
    return [(i, d) for i, d in session.connection().execute(q).all() if i is not None and d is not None]


def assigned_by_id(session: Session, ids: list[int]) -> list[Issue]:
    """These issues, by number, those still assigned to an owner (by primary key, in chunks)."""
    found: list[Issue] = []
    for among in _among(session, col(Issue.id), ids):
        q = select(Issue).where(among, Issue.status == "assigned", col(Issue.owner_id).is_not(None))
        found.extend(session.exec(q.order_by(col(Issue.id))).all())
    return found


# ids per IN (...) on SQLite (its default limit is 32,766 variables); at 1M cases about 85,000
# are assigned with a deadline.
STEPS_CHUNK = 10_000


def _among(session: Session, column: Any, ids: list[int]) -> Iterator[ColumnElement[bool]]:
    """`column` among the ids. On PostgreSQL one array parameter (= ANY(%s)): an IN list of
    thousands is a parameter each, which the protocol counts in 16 bits ("number of parameters
    must be between 0 and 65535", epoch8/datapipe#408), which psycopg splits client-side on every
    call (0.12 s of the ladder's 0.3 s at 1M), and whose text changes with the count, so no
    statement is ever prepared. SQLite has no arrays: IN lists in chunks."""
    if not ids:
        return
    if session.get_bind().dialect.name == "postgresql":
        yield column == any_(bindparam("ids", ids, type_=ARRAY(Integer)))
        return
    for k in range(0, len(ids), STEPS_CHUNK):
        yield column.in_(ids[k : k + STEPS_CHUNK])


def steps_taken(session: Session, issue_ids: list[int]) -> set[tuple[int, date, str]]:
    taken: set[tuple[int, date, str]] = set()
    for among in _among(session, col(LadderStep.issue_id), issue_ids):
        # The three columns, not the rows as objects: only the keys are compared.
        q = select(col(LadderStep.issue_id), col(LadderStep.deadline), col(LadderStep.step))
        taken.update((i, d, st) for i, d, st in session.connection().execute(q.where(among)).all())
    return taken


OVERDUE_NAMED = 5  # overdue cases the weekly digest names by number


@dataclass(frozen=True)
class Week:
    new: int
    resolved: int
    open: int
    overdue: int  # how many are overdue
    overdue_first: list[int]  # the first few of them by number, oldest deadline first
    oldest: list[Issue]  # the three oldest open cases
    year: Period
    counts: LevelCounts

    @property
    def empty(self) -> bool:
        return self.new == self.resolved == self.open == 0


def _oldest_open(session: Session, scope: ColumnElement[bool], n: int = 3) -> list[Issue]:
    """The scope's n oldest open cases: chosen by (created_at, id) off the index (a township has
    thousands open; sorting their rows would read them all), then only those n are loaded."""
    order = (col(Issue.created_at), col(Issue.id))
    ids = select(col(Issue.id)).where(scope, open_clause()).order_by(*order).limit(n)
    chosen = list(session.connection().execute(ids).scalars())
    return list(session.exec(select(Issue).where(col(Issue.id).in_(chosen)).order_by(*order)).all())


def week_of(session: Session, unit: UnitInfo, week: Period, year: Period, today: date, now: datetime) -> Week:
    scope = in_subtree_clause(unit)
    alive = Issue.status != "closed"  # merged duplicates are not counted, as in 统计
    created = col(Issue.created_at)  # the `created` event's time
    new = select(func.count()).where(scope, alive, created >= week.start_at, created < week.end_at)
    open_q = select(Issue).where(scope, open_clause())
    overdue = select(Issue.id).where(scope, overdue_clause(today)).order_by(col(Issue.deadline), col(Issue.id))
    return Week(
        new=session.exec(new).one(),
        resolved=resolved_in(session, unit, week),
        open=session.exec(select(func.count()).select_from(open_q.subquery())).one(),
        # The digest names only the first few: at scale there are a hundred thousand.
        overdue=session.exec(select(func.count()).where(scope, overdue_clause(today))).one(),
        overdue_first=list(session.connection().execute(overdue.limit(OVERDUE_NAMED)).scalars()),
        oldest=_oldest_open(session, scope),
        year=year,
        counts=count_levels(session, year, unit, now),
    )
