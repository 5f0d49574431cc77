"""The numbers of the dashboard: the §2 counts (models.counts, the same function as 统计, read from
the kept counts), a row per township, and the weekly trend. Aggregation happens in SQL so that
a million issues are a few index scans, not a million objects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, literal_column, or_
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import Select

from models.clock import day_start, local
from models.counts import RESOLVED_FACTS, LevelCounts, Period, cutoff_of, scope_clause
from models.directory import Directory, UnitInfo
from models.facts import F, Fact
from models.rules import in_subtree_clause, overdue_clause
from models.tables import Issue
from models.vocabulary import Status

TREND_WEEKS = 26


@dataclass(frozen=True)
class TownshipRow:
    """Issues of one township (its villages included) registered in the period, as they stand now."""

    id: int
    name: str
    entered: int
    resolved: int
    open: int
    overdue: int
    median_days: float | None

    @property
    def rate(self) -> float | None:
        return round(self.resolved / self.entered, 4) if self.entered else None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "entered": self.entered,
            "resolved": self.resolved,
            "open": self.open,
            "overdue": self.overdue,
            "resolution_rate": self.rate,
            "median_days": self.median_days,
        }


@dataclass(frozen=True)
class Week:
    start: date  # a Monday, Asia/Shanghai
    new: int
    resolved: int


def _rows_of(*columns: Any) -> Select[*tuple[Any, ...]]:
    """A select whose results are always rows, for any number of columns: sqlmodel's select()
    is typed for four columns at most, and with one column returns bare values."""
    return Select(*columns)


def levels_json(c: LevelCounts) -> dict[str, dict[str, int]]:
    return {
        "district": {
            "assigned": c.district_assigned,
            "resolved": c.district_resolved,
            "tuesday_assigned": c.tuesday_assigned,
            "tuesday_resolved": c.tuesday_resolved,
            "regular_assigned": c.regular_assigned,
            "regular_resolved": c.regular_resolved,
        },
        "township": {"entered": c.township_entered, "resolved": c.township_resolved},
        "village": {"entered": c.village_entered, "resolved": c.village_resolved},
    }


def _townships_in(scope: UnitInfo, directory: Directory) -> list[UnitInfo]:
    if scope.kind == "township":
        return [scope]
    if scope.kind == "village":
        return [directory.get(scope.parent_id)] if scope.parent_id else []
    return sorted((u for u in directory.units.values() if u.kind == "township"), key=lambda u: u.id)


def township_rows(
    session: Session, scope: UnitInfo, directory: Directory, period: Period, today: date
) -> list[TownshipRow]:
    cohort = [
        in_subtree_clause(scope),
        col(Issue.township_id).is_not(None),
        col(Issue.status) != Status.CLOSED,
        col(Issue.created_at) >= period.start_at,
        col(Issue.created_at) < period.end_at,
    ]
    # Aggregate FILTERs, not sums of CASEs (a third of the time at 1M on SQLite). Closed
    # duplicates are out of the cohort, so an issue in it is resolved or else open
    # (OPEN_STATUSES: tests/test_rules.py holds the two together).
    resolved = col(Issue.status) == Status.RESOLVED
    tallies = session.exec(
        _rows_of(
            Issue.township_id,
            func.count(),
            func.count().filter(resolved),
            func.count().filter(overdue_clause(today)),
            func.count(col(Issue.resolved_days)).filter(resolved),
        )
        .where(*cohort)
        .group_by(col(Issue.township_id))
    ).all()
    found = {t: (n, int(r or 0), n - int(r or 0), int(d or 0)) for t, n, r, d, _m in tallies}
    medians = _median_days(session, cohort, {t: int(m or 0) for t, *_rest, m in tallies if t is not None})
    rows = []
    for unit in _townships_in(scope, directory):
        n, r, o, d = found.get(unit.id, (0, 0, 0, 0))
        median = medians.get(unit.id)
        rows.append(TownshipRow(unit.id, unit.name, n, r, o, d, round(median, 1) if median is not None else None))
    return rows


def _median_days(session: Session, cohort: list[Any], counts: dict[int, int]) -> dict[int, float]:
    """Per township, the median of resolved_days (resolved_at - created_at in days, as Python
    computes it when the issue is resolved) over the resolved issues of the cohort, equal to
    statistics.median: the middle value, or the two middle values averaged as (a + b) / 2.
    `counts` holds how many there are per township, so each township reads just its middle
    one or two values (a bounded sort in its own index range), never the whole cohort."""
    days = col(Issue.resolved_days)
    medians: dict[int, float] = {}
    for township_id, n in counts.items():
        if not n:
            continue
        q = (
            select(days)
            .where(*cohort, col(Issue.township_id) == township_id, col(Issue.status) == "resolved", days.is_not(None))
            .order_by(days)
            .offset((n - 1) // 2)
            .limit(2 - n % 2)
        )
        middle: list[float] = [float(x) for x in session.connection().execute(q).scalars() if x is not None]
        medians[township_id] = middle[0] if n % 2 else (middle[0] + middle[1]) / 2
    return medians


def week_start(d: date) -> date:
    return d - timedelta(days=d.weekday())


def trend(session: Session, scope: UnitInfo, now: datetime, weeks: int = TREND_WEEKS) -> list[Week]:
    """New issues (by registration) and resolved issues per Monday-to-Sunday week, the current
    week last. A resolved issue counts once in the whole chart, as on the cards and in 统计
    (PRODUCT §2 "not counted twice"): in the week of its counted resolution, the first 办结 in
    the chart at a level below the district, or the 化解 that stands now (a reopened district
    case counts when it was resolved again, and not at all while it is open)."""
    today = local(now).date()
    starts = [week_start(today) - timedelta(weeks=weeks - 1 - i) for i in range(weeks)]
    bounds = [day_start(d) for d in [*starts, starts[-1] + timedelta(weeks=1)]]
    in_scope = [in_subtree_clause(scope), col(Issue.status) != "closed"]

    def week_of(column: Any, lo: int = 0, hi: int = weeks) -> Any:
        """The week a time inside the chart falls in, by halving (about five comparisons a row,
        where a sum per week compared each row with every week's bounds: at 1M cases that was
        most of the dashboard's time)."""
        if hi - lo == 1:
            return literal_column(str(lo))  # a week number, inline: PostgreSQL types no bare parameter in a CASE
        mid = (lo + hi) // 2
        return case((column < bounds[mid], week_of(column, lo, mid)), else_=week_of(column, mid, hi))

    def per_week(column: Any, source: Any, *where: Any) -> list[int]:
        week = week_of(column).label("week")
        tally = [0] * weeks
        query = select(week, func.count()).select_from(source).where(*where).group_by(literal_column("week"))
        for i, n in session.execute(query):
            tally[int(i)] = int(n)
        return tally

    created = col(Issue.created_at)
    new = per_week(created, Issue, *in_scope, created >= bounds[0], created < bounds[-1])
    # From the kept counts (merged duplicates have none), each issue once: its first 办结 below
    # the district in the chart is the one with no other before it in the chart (prior_at), and
    # a standing 化解 comes after every other resolution of its issue (any later one would have
    # ended it), so it counts when none below the district is in the chart before it.
    c = F.c
    cutoff = cutoff_of(Period(starts[0], starts[-1] + timedelta(days=6), ""), now)
    standing = or_(c.kind != Fact.DISTRICT_RESOLVED, c.until.is_(None), c.until >= cutoff)
    first = or_(c.prior_at.is_(None), c.prior_at < bounds[0])
    in_chart = (c.at >= bounds[0], c.at < bounds[-1])
    resolved = per_week(c.at, F, c.kind.in_(RESOLVED_FACTS), standing, first, scope_clause(scope), *in_chart)
    return [Week(starts[i], new[i], resolved[i]) for i in range(weeks)]


def stats_json(scope: UnitInfo, period: Period, counts: LevelCounts, rows: list[TownshipRow]) -> dict[str, Any]:
    """The /api/stats payload (the dashboard renders the same dict)."""
    return {
        "unit": {"id": scope.id, "name": scope.name, "kind": scope.kind},
        "period": {"from": period.start.isoformat(), "to": period.end.isoformat(), "label": period.label},
        "levels": levels_json(counts),
        "paragraph": counts.paragraph(),
        "townships": [row.as_json() for row in rows],
    }
