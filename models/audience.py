"""Who a message reaches (PRODUCT §5a): every outgoing message informs a group and names the
people who must act. Each of them is really notified: by a real @ in a group they belong to,
else directly, one to one with the bot (DingTalk's oToMessages/batchSend notifies the person).

Membership of a group, from the org file: the people of the group's unit and of the units below
it whose nearest unit with a group is this one (a department counts as below the district; a
village without a group belongs to its township's group, not also to the district's), plus the
group's `members:` list, plus anyone seen posting in the group (table group_members).

A row keeps `@姓名` in its text only for the people in its at list; the sender writes that as
`@<staffId>` with `at.atUserIds` where the channel can @ (a session webhook, a custom robot), and
as the plain name where it cannot (the OpenAPI), telling those people one to one instead."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from sqlalchemy import insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from models.tables import GroupBinding, GroupMember, Person, Unit

MEMBERS = GroupMember.__table__  # type: ignore[attr-defined]


def home_group_unit(unit_id: int | None, parents: Mapping[int, int | None], grouped: set[int]) -> int | None:
    """The nearest unit, this one or above it, that has a group of its own."""
    seen: set[int] = set()
    while unit_id is not None and unit_id not in seen:
        if unit_id in grouped:
            return unit_id
        seen.add(unit_id)
        unit_id = parents.get(unit_id)
    return None


def members(session: Session, conversation_id: str) -> set[str]:
    """The staffIds of the people in this group (see the module's rule)."""
    found = set(session.exec(select(GroupMember.person_id).where(GroupMember.conversation_id == conversation_id)))
    binding = session.get(GroupBinding, conversation_id)
    if binding is None:
        return found
    parents: dict[int, int | None] = {u: p for u, p in session.exec(select(Unit.id, Unit.parent_id)) if u is not None}
    grouped = set(session.exec(select(GroupBinding.unit_id)))
    covered = [u for u in parents if home_group_unit(u, parents, grouped) == binding.unit_id]
    found.update(session.exec(select(Person.id).where(col(Person.unit_id).in_(covered))))
    return found


def seen_posting(session: Session, pairs: Iterable[tuple[str, str]]) -> None:
    """Remember who posted in which group: (conversation_id, staffId); known pairs are skipped."""
    rows = [{"conversation_id": c, "person_id": p, "source": "seen"} for c, p in dict.fromkeys(pairs) if c and p]
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    statement = _insert_or_skip(dialect)
    if statement is None:
        known = set(session.exec(select(GroupMember.conversation_id, GroupMember.person_id)))
        rows = [r for r in rows if (r["conversation_id"], r["person_id"]) not in known]
        if not rows:
            return
        statement = insert(MEMBERS)
    session.execute(statement, rows)


@cache
def _insert_or_skip(dialect: str) -> Any:
    if dialect == "sqlite":
        return sqlite.insert(MEMBERS).on_conflict_do_nothing()
    if dialect == "postgresql":
        return postgresql.insert(MEMBERS).on_conflict_do_nothing()
    return None


def sync_members(session: Session, listed: Mapping[str, Sequence[str]]) -> None:
    """The org file's `members:` lists: conversation_id → staffIds (replacing the file's old list)."""
    for row in session.exec(select(GroupMember).where(GroupMember.source == "file")):
        if row.person_id not in listed.get(row.conversation_id, ()):
            session.delete(row)
    for cid, ids in listed.items():
        for pid in ids:
            found = session.get(GroupMember, (cid, pid))
            if found is None:
                session.add(GroupMember(conversation_id=cid, person_id=pid, source="file"))
            elif found.source != "file":
                found.source = "file"
                session.add(found)
    session.flush()


# --- the text as a channel shows it


def plain(text: str, names: Iterable[str]) -> str:
    """The text with no `@` before these names: for people the message cannot @ there."""
    for name in sorted(set(names), key=len, reverse=True):
        text = text.replace(f"@{name}", name)
    return text
