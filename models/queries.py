"""Reads shared by handlers, jobs and the CLI. They take a session and never commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import or_
from sqlmodel import Session, col, select

from models.clock import local
from models.directory import UnitInfo
from models.events import Kind
from models.rules import assigner, leads_clause, open_clause, overdue_clause, visible_clause
from models.tables import GroupBinding, InboxMessage, Issue, IssueEvent, OutboxMessage, Person

PAGE_SIZE = 8


def find_sender(session: Session, staff_id: str | None, union_id: str | None, sender_id: str | None) -> Person | None:
    """By staffId; where DingTalk leaves it out, by unionId or the dingtalkId-style senderId.
    Someone DingTalk's contacts no longer list (inactive) is nobody: every right goes at once."""
    if staff_id and (p := session.get(Person, staff_id)):
        return p if p.active else None
    for column, value in ((Person.union_id, union_id), (Person.dingtalk_id, sender_id)):
        if value and (p := session.exec(select(Person).where(column == value, col(Person.active))).first()):
            return p
    return None


def people(session: Session, ids: Sequence[str]) -> list[Person]:
    found = {p.id: p for p in session.exec(select(Person).where(col(Person.id).in_(list(ids)))).all()}
    return [found[i] for i in dict.fromkeys(ids) if i in found]


def people_named(session: Session, name: str) -> list[Person]:
    return list(session.exec(select(Person).where(Person.name == name, col(Person.active))).all())


def leads_of(session: Session, level: str, unit_id: int) -> list[Person]:
    """The people who lead issues at this level in this unit (models.rules.leads)."""
    return list(session.exec(select(Person).where(leads_clause(level, unit_id)).order_by(Person.id)).all())


def assigning_lead(session: Session, issue: Issue) -> list[Person]:
    """The lead who assigned the case or last approved its extension (models.rules.assigner);
    for a case never assigned by a known person, the leads of its level."""
    found = assigner(events_of(session, issue.id)) if issue.id is not None else None
    lead = people(session, [found]) if found else []
    return lead or leads_of(session, issue.level, issue.unit_id)


def duty_leads(session: Session, district_id: int, ids: Sequence[str]) -> list[Person]:
    """Who takes an escalation to the district: the org file's duty_leads, else all district leads."""
    return people(session, ids) if ids else leads_of(session, "district", district_id)


def conversations_of(session: Session, unit_id: int) -> list[str]:
    rows = session.exec(select(GroupBinding).where(GroupBinding.unit_id == unit_id)).all()
    return sorted(b.conversation_id for b in rows)


def binding(session: Session, conversation_id: str) -> GroupBinding | None:
    return session.get(GroupBinding, conversation_id)


def events_of(session: Session, issue_id: int) -> list[IssueEvent]:
    query = select(IssueEvent).where(col(IssueEvent.issue_id) == issue_id).order_by(col(IssueEvent.seq))
    return list(session.exec(query).all())


def revisited(session: Session, issue: Issue) -> list[str]:
    """Who heard the 回访 of the issue's latest resolution: its reporter and the reporters of the
    duplicates merged into it before then (all followers while it is not resolved)."""
    merged = session.exec(
        select(Issue.reporter_id, IssueEvent.at)
        .join(IssueEvent, col(IssueEvent.issue_id) == Issue.id)
        .where(Issue.duplicate_of == issue.id, IssueEvent.kind == Kind.CLOSED)
    ).all()
    cutoff = issue.resolved_at
    heard = [pid for pid, at in merged if cutoff is None or local(at) <= local(cutoff)]
    return list(dict.fromkeys([issue.reporter_id, *heard]))


def followers(session: Session, issue: Issue) -> list[str]:
    """The reporter and the reporters of duplicates merged into it."""
    merged = session.exec(select(Issue.reporter_id).where(Issue.duplicate_of == issue.id)).all()
    return list(dict.fromkeys([issue.reporter_id, *merged]))


def list_issues(
    session: Session, unit: UnitInfo, person_id: str, mode: str, today: date, page: int
) -> tuple[list[Issue], int]:
    q = select(Issue).where(visible_clause(unit, person_id))
    open_ = open_clause()
    if mode == "待办":
        q = q.where(open_, or_(col(Issue.unit_id) == unit.id, col(Issue.owner_id) == person_id))
    elif mode == "我的":
        q = q.where(or_(col(Issue.owner_id) == person_id, col(Issue.reporter_id) == person_id))
    elif mode == "逾期":
        q = q.where(overdue_clause(today))
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
