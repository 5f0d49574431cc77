"""The rules of the domain, each written once: a Python predicate over one issue or person beside
its SQL twin for queries (`…_clause`). Chat, counts, jobs and the web all ask these;
tests/test_rules.py checks every pair against each other on the same data."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy import ColumnElement, and_, false, or_, true
from sqlmodel import col

from models.directory import Directory, UnitInfo
from models.tables import Issue, IssueEvent, Person
from models.vocabulary import OPEN_STATUSES, Level, Role, UnitKind

# Who leads an issue at its level: at village level the village's own staff (any role), at
# township level the township_lead, at district level the district_lead (PRODUCT §3).
LEAD_ROLE: dict[str, Role | None] = {
    Level.VILLAGE: None,
    Level.TOWNSHIP: Role.TOWNSHIP_LEAD,
    Level.DISTRICT: Role.DISTRICT_LEAD,
}
LEAD_TITLES: dict[str, str] = {
    Level.VILLAGE: "本村(社区)干部",
    Level.TOWNSHIP: "乡镇(街道)领导",
    Level.DISTRICT: "区领导",
}


def is_open(status: str) -> bool:
    """Still being worked on: not resolved, not merged away."""
    return status in OPEN_STATUSES


def open_clause() -> ColumnElement[bool]:
    return col(Issue.status).in_(OPEN_STATUSES)


def days_overdue(status: str, deadline: date | None, today: date) -> int:
    """Calendar days past the deadline of an open issue; 0 when it is not overdue."""
    if deadline is None or not is_open(status) or deadline >= today:
        return 0
    return (today - deadline).days


def is_overdue(issue: Issue, today: date) -> bool:
    return days_overdue(issue.status, issue.deadline, today) > 0


def overdue_clause(today: date) -> ColumnElement[bool]:
    # IS NOT NULL keeps the clause two-valued, so NOT(...) also holds issues without a deadline.
    return and_(open_clause(), col(Issue.deadline).is_not(None), col(Issue.deadline) < today)


def leads(person: Person, level: str, unit_id: int) -> bool:
    """Does this person lead issues at this level in this unit? Someone DingTalk's contacts no
    longer list (inactive) leads nothing: no notice, @ or 延期 request goes to them."""
    role = LEAD_ROLE[level]
    return person.active and person.unit_id == unit_id and (role is None or person.role == role)


def leads_clause(level: str, unit_id: int) -> ColumnElement[bool]:
    """The people who lead issues at this level in this unit (over `people`)."""
    role = LEAD_ROLE[level]
    here = and_(col(Person.active), col(Person.unit_id) == unit_id)
    return here if role is None else and_(here, col(Person.role) == role)


def in_subtree(unit: UnitInfo, issue: Issue) -> bool:
    """The issues of a unit's subtree: the district all, a township those of its villages and its
    own, a village its own, a department those assigned to it."""
    if unit.kind == UnitKind.DISTRICT:
        return True
    values: dict[str, int | None] = {
        UnitKind.TOWNSHIP: issue.township_id,
        UnitKind.VILLAGE: issue.village_id,
        UnitKind.DEPARTMENT: issue.department_id,
    }
    value = values.get(unit.kind)
    return value is not None and value == unit.id


def in_subtree_clause(unit: UnitInfo) -> ColumnElement[bool]:
    if unit.kind == UnitKind.DISTRICT:
        return true()
    columns: dict[str, int | None] = {
        UnitKind.TOWNSHIP: Issue.township_id,
        UnitKind.VILLAGE: Issue.village_id,
        UnitKind.DEPARTMENT: Issue.department_id,
    }
    column = columns.get(unit.kind)
    return col(column) == unit.id if column is not None else false()


def visible(unit: UnitInfo, person_id: str, issue: Issue) -> bool:
    """What a person may see in chat: their unit's subtree, plus what they reported or own."""
    return person_id in (issue.owner_id, issue.reporter_id) or in_subtree(unit, issue)


def visible_clause(unit: UnitInfo, person_id: str) -> ColumnElement[bool]:
    return or_(in_subtree_clause(unit), col(Issue.owner_id) == person_id, col(Issue.reporter_id) == person_id)


def may_own(directory: Directory, level: str, unit_id: int, owner: Person) -> bool:
    """Whom a level may make the 包案人: someone still in the org, of the acting unit or of a unit
    below it (a department counts as below the district); a village cannot hand its case to a bureau."""
    if not owner.active:
        return False
    if level == Level.DISTRICT:
        return True
    return directory.contains(unit_id, owner.unit_id)


def assigner(events: Iterable[IssueEvent]) -> str | None:
    """The lead who answers for the case's deadline: whoever last assigned it (交办) or last
    approved an extension of it (同意延期); a 延期 request and the 2-day overdue notice go to them."""
    found = None
    for ev in events:  # in order
        if ev.kind in ("assigned", "extension_approved"):
            found = ev.actor_id
    return found
