"""Reads shared by handlers, jobs and the CLI. They take a session and never commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import ColumnElement, false, or_, true
from sqlmodel import Session, col, select

from models.directory import UnitInfo
from models.tables import OPEN_STATUSES, GroupBinding, InboxMessage, Issue, IssueEvent, OutboxMessage, Person

PAGE_SIZE = 8


def find_sender(session: Session, staff_id: str | None, union_id: str | None, sender_id: str | None) -> Person | None:
    """By staffId; where DingTalk leaves it out, by unionId or the dingtalkId-style senderId."""
    if staff_id and (p := session.get(Person, staff_id)):
        return p
    for column, value in ((Person.union_id, union_id), (Person.dingtalk_id, sender_id)):
        if value and (p := session.exec(select(Person).where(column == value)).first()):
            return p
    return None


def people(session: Session, ids: Sequence[str]) -> list[Person]:
    found = {p.id: p for p in session.exec(select(Person).where(col(Person.id).in_(list(ids)))).all()}
    return [found[i] for i in dict.fromkeys(ids) if i in found]


def people_named(session: Session, name: str) -> list[Person]:
    return list(session.exec(select(Person).where(Person.name == name)).all())


def staff_of(session: Session, unit_id: int, roles: Sequence[str] | None = None) -> list[Person]:
    q = select(Person).where(Person.unit_id == unit_id)
    if roles:
        q = q.where(col(Person.role).in_(list(roles)))
    return list(session.exec(q.order_by(Person.id)).all())


def leads_of(session: Session, level: str, unit_id: int) -> list[Person]:
    """Who leads an issue at its level: the village's own staff, the township_lead, the district_lead."""
    roles = {"village": None, "township": ("township_lead",), "district": ("district_lead",)}[level]
    return staff_of(session, unit_id, roles)


def conversations_of(session: Session, unit_id: int) -> list[str]:
    rows = session.exec(select(GroupBinding).where(GroupBinding.unit_id == unit_id)).all()
    return sorted(b.conversation_id for b in rows)


def binding(session: Session, conversation_id: str) -> GroupBinding | None:
    return session.get(GroupBinding, conversation_id)


def events_of(session: Session, issue_id: int) -> list[IssueEvent]:
    return list(session.exec(select(IssueEvent).where(IssueEvent.issue_id == issue_id).order_by(IssueEvent.seq)).all())


def followers(session: Session, issue: Issue) -> list[str]:
    """The reporter and the reporters of duplicates merged into it."""
    merged = session.exec(select(Issue.reporter_id).where(Issue.duplicate_of == issue.id)).all()
    return list(dict.fromkeys([issue.reporter_id, *merged]))


def in_subtree(unit: UnitInfo) -> ColumnElement[bool]:
    """The issues of a unit's subtree: the district all, a township those of its villages and its
    own, a village its own, a department those assigned to it. 统计, lists, jobs and the web all
    scope with this."""
    if unit.kind == "district":
        return true()
    column = {"township": Issue.township_id, "village": Issue.village_id, "department": Issue.department_id}.get(
        unit.kind
    )
    return col(column) == unit.id if column is not None else false()


def scope_filter(unit: UnitInfo, person_id: str) -> ColumnElement[bool]:
    """The issues a person may see in chat: their unit's subtree, plus what they reported or own."""
    return or_(in_subtree(unit), Issue.owner_id == person_id, Issue.reporter_id == person_id)


def list_issues(
    session: Session, unit: UnitInfo, person_id: str, mode: str, today: date, page: int
) -> tuple[list[Issue], int]:
    q = select(Issue).where(scope_filter(unit, person_id))
    open_ = col(Issue.status).in_(OPEN_STATUSES)
    if mode == "待办":
        q = q.where(open_, or_(Issue.unit_id == unit.id, Issue.owner_id == person_id))
    elif mode == "我的":
        q = q.where(or_(Issue.owner_id == person_id, Issue.reporter_id == person_id))
    elif mode == "逾期":
        q = q.where(open_, col(Issue.deadline) < today)
    elif mode == "本单位":
        q = q.where(Issue.unit_id == unit.id)
    rows = list(session.exec(q.order_by(col(Issue.id).desc()).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)))
    total_hint = len(rows)
    return rows[:PAGE_SIZE], total_hint


def reply_of(session: Session, msg_id: str) -> OutboxMessage | None:
    return session.exec(select(OutboxMessage).where(OutboxMessage.key == f"reply:{msg_id}")).first()


def pending_inbox(session: Session) -> list[str]:
    rows = session.exec(
        select(InboxMessage.msg_id).where(InboxMessage.status == "pending").order_by(col(InboxMessage.received_at))
    )
    return list(rows)
