"""Apply contact changes: the people rows and the ContactEvent that records them, in the
caller's transaction (so a change is never applied without its record, nor twice)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session

from bot.contacts.plan import DINGTALK, Change
from models.tables import ContactEvent, Person


def applied(session: Session, event_id: str) -> bool:
    return session.get(ContactEvent, event_id) is not None


def apply(session: Session, changes: Sequence[Change], event_id: str, event_type: str, at: datetime) -> None:
    for c in changes:
        person = session.get(Person, c.person_id)
        if c.kind == "added" and person is None:
            assert c.unit_id is not None and c.role is not None
            person = Person(id=c.person_id, name=c.name, role=c.role, unit_id=c.unit_id, source=DINGTALK)
            person.union_id = c.union_id
        elif person is None:
            continue
        elif c.kind == "left":
            person.active = False
        elif c.kind == "renamed":
            person.name = c.name
        else:  # moved, rejoined, or an added one already there
            person.active = True
            if person.source == DINGTALK and c.unit_id is not None and c.role is not None:
                person.name, person.unit_id, person.role = c.name, c.unit_id, c.role
                person.union_id = c.union_id or person.union_id
        session.add(person)
    session.add(ContactEvent(event_id=event_id, event_type=event_type, at=at, changes=[c.to_dict() for c in changes]))
    session.flush()
