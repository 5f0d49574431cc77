"""Apply contact changes: the people rows and the ContactEvent that records them, in the
caller's transaction (so a change is never applied without its record, nor twice)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Table, insert
from sqlmodel import Session, col, select

from bot.contacts.plan import DINGTALK, Change
from models.tables import ContactEvent, Person

PEOPLE: Table = Person.__table__  # type: ignore[attr-defined]
CHUNK = 1000  # ids per IN (...): well under SQLite's and PostgreSQL's bind-parameter limits


def applied(session: Session, event_id: str) -> bool:
    return session.get(ContactEvent, event_id) is not None


def apply(session: Session, changes: Sequence[Change], event_id: str, event_type: str, at: datetime) -> None:
    ids = [c.person_id for c in changes]
    known: dict[str, Person] = {}
    for start in range(0, len(ids), CHUNK):  # one query per chunk, not one per person
        rows = session.exec(select(Person).where(col(Person.id).in_(ids[start : start + CHUNK])))
        known.update((p.id, p) for p in rows)
    new: list[dict[str, object]] = []
    for c in changes:
        person = known.get(c.person_id)
        if c.kind == "added" and person is None:
            # Plain rows in one multi-row insert: a district adds thousands at its first sync.
            new.append(
                {
                    "id": c.person_id,
                    "name": c.name,
                    "role": c.role,
                    "unit_id": c.unit_id,
                    "union_id": c.union_id,
                    "dingtalk_id": None,
                    "source": DINGTALK,
                    "active": True,
                }
            )
            continue
        if person is None:
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
    if new:
        session.execute(insert(PEOPLE), new)
    session.add(ContactEvent(event_id=event_id, event_type=event_type, at=at, changes=[c.to_dict() for c in changes]))
    session.flush()
