"""The one outbox writer, for chat and jobs alike: the shape of a row, the idempotency key of
every kind of message, "write unless this key exists", where a message to a unit goes (its
bound groups, else the people who must act, one to one), and how a mention is written for
DingTalk. The sender (bot/transport/sender.py) delivers what is written here.

Rows are written with Core statements (a plain append: the ORM's object bookkeeping is most of
the cost of a row), several rows in one multi-row insert, and `ON CONFLICT (key) DO NOTHING`
where the database has it, so a key that exists is never written twice and costs no look-up."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from models import audience
from models import queries as q
from models.tables import OutboxMessage

OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
BOT_TITLE = "两难助手"  # the title of replies and notices


# --- idempotency keys: one function per family; each format is part of the at-most-once promise


def reply_key(msg_id: str) -> str:
    """The one reply to a chat message."""
    return f"reply:{msg_id}"


def notice_key(notice: str, msg_id: str) -> str:
    """The base of a notice a chat message causes elsewhere (`notice` tells several apart)."""
    return f"{notice}:{msg_id}"


def job_key(job: str, period: object, *parts: object) -> str:
    """The base of a scheduled message: the job, the period it is about, what it is about."""
    return ":".join(str(p) for p in ("sched", job, period, *parts))


def group_key(base: str, conversation_id: str) -> str:
    """One group's copy of a message."""
    return f"{base}:{conversation_id}"


def users_key(base: str) -> str:
    """A notice sent one to one to everyone it @-mentions, where the unit has no group."""
    return f"{base}:users"


def person_key(base: str, person_id: str) -> str:
    """One person's own part of a message, one to one, where the unit has no group."""
    return f"{base}:user:{person_id}"


def todo_key(cause: str, todo_id: int) -> str:
    """One change to one DingTalk to-do, caused by one message (`cause`, its msgId)."""
    return f"todo:{cause}:{todo_id}"


def forced_key(key: str, now: datetime) -> str:
    """A forced rerun (CLI --force): a new key, so it is sent again."""
    return f"{key}:force:{now.isoformat()}"


# --- the row


def row(
    key: str,
    kind: str,
    *,
    title: str,
    text: str,
    created_at: datetime,
    conversation_id: str | None = None,
    user_ids: Iterable[str] = (),
    at_user_ids: Iterable[str] = (),
    session_webhook: str | None = None,
    webhook_expires_at: datetime | None = None,
) -> dict[str, Any]:
    """Every column of a new outbox row (kind: reply | group | user | todo | work | ding), the model's defaults filled
    in: the rows of one multi-row insert must name the same columns."""
    return {
        "key": key,
        "kind": kind,
        "conversation_id": conversation_id,
        "user_ids": list(user_ids),
        "at_user_ids": list(at_user_ids),
        "title": title,
        "text": text,
        "session_webhook": session_webhook,
        "webhook_expires_at": webhook_expires_at,
        "status": "pending",
        "attempts": 0,
        "last_error": None,
        "created_at": created_at,
        "sent_at": None,
        "next_attempt_at": None,
        "claimed_until": None,
        "channel": None,
    }


def todo_row(key: str, order: str, change: str, people: Iterable[str], *, created_at: datetime) -> dict[str, Any]:
    """A call to DingTalk's to-do API (kind "todo"): `change` is models.todos.Change as JSON; the
    rows of one to-do share `order` as their conversation, so the sender keeps them in order."""
    return row(key, "todo", title="待办", text=change, created_at=created_at, conversation_id=order, user_ids=people)


def target(r: Mapping[str, Any]) -> str:
    """Where a row goes, for logs and previews: a conversation id, or "user:<id>,<id>"."""
    return r["conversation_id"] or "user:" + ",".join(r["user_ids"])


# --- writing


def write(session: Session, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert the rows whose key does not exist yet, in one statement; how many were written.
    Counted by RETURNING: psycopg reports an INSERT … ON CONFLICT DO NOTHING's rowcount as -1
    through SQLAlchemy, so on PostgreSQL every write looked refused."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    statement = _UNLESS_EXISTS.get(dialect)
    if statement is None:  # no ON CONFLICT here: look the keys up first
        keys = [r["key"] for r in rows]
        known = set(session.execute(select(OUTBOX.c.key).where(OUTBOX.c.key.in_(keys))).scalars())
        rows = [r for r in rows if r["key"] not in known]
        if not rows:
            return 0
        statement = insert(OUTBOX)
    return len(session.execute(statement.returning(OUTBOX.c.key), list(rows)).all())


_UNLESS_EXISTS: dict[str, Insert] = {
    "sqlite": sqlite.insert(OUTBOX).on_conflict_do_nothing(index_elements=[OUTBOX.c.key]),
    "postgresql": postgresql.insert(OUTBOX).on_conflict_do_nothing(index_elements=[OUTBOX.c.key]),
}


# --- where a message to a unit goes


def to_unit(
    session: Session,
    base: str,
    *,
    unit_id: int | None,
    title: str,
    text: str,
    people: Sequence[str],
    created_at: datetime,
    conversation_id: str | None = None,
    skip: Callable[[str], bool] | None = None,
    each: Callable[[str], str] | None = None,
    direct: str = "user",
) -> list[dict[str, Any]]:
    """The rows of a message to a unit: one in each of its bound groups (or in the conversation
    named), @-mentioning `people`, except the groups `skip` says no to. Only where the unit has
    no group at all do the people who must act hear of it one to one: each their own text under
    their own key when `each` gives it, else one message to all of them."""
    groups = q.conversations_of(session, unit_id) if unit_id and not conversation_id else []
    cids = [c for c in ([conversation_id] if conversation_id else groups) if not (skip and skip(c))]
    if cids:
        at = list(people)
        return [
            row(
                group_key(base, c),
                "group",
                title=title,
                text=text,
                created_at=created_at,
                conversation_id=c,
                at_user_ids=at,
            )
            for c in cids
        ]
    if not unit_id or not people:
        return []
    if conversation_id:
        groups = q.conversations_of(session, unit_id)
    if groups:  # the unit has groups; they were left out, not missing
        return []
    if each is None:
        return [
            row(
                users_key(base),
                "user",
                title=title,
                text=text,
                created_at=created_at,
                user_ids=people,
                at_user_ids=people,
            )
        ]
    return [
        row(person_key(base, p), direct, title=title, text=each(p), created_at=created_at, user_ids=[p]) for p in people
    ]


# --- who must act, and how each is reached (models/audience.py)


DIRECT_KINDS = frozenset({"user", "work", "ding"})  # rows to people, not to a conversation


def reach(
    session: Session, rows: Sequence[dict[str, Any]], base: str, created_at: datetime, direct: str = "user"
) -> list[dict[str, Any]]:
    """The rows of one outgoing message, each naming in `at_user_ids` the people it asks to act,
    made to reach them: in a group (or a reply's conversation) only its members stay in the at
    list and the others' `@姓名` becomes a plain name; a one-to-one row reaches its recipients;
    and each person asked to act whom no row reaches gets the text one to one (key
    person_key(base, id)), once however many rows asked for them: as a one-to-one chat message, or
    as `direct` says (a work notification where the moment matters beyond chat)."""
    wanted = list(dict.fromkeys(u for r in rows for u in r["at_user_ids"]))
    if not wanted:
        return list(rows)
    names = {p.id: p.name for p in q.people(session, wanted)}
    reached: set[str] = set()
    first_text: dict[str, str] = {}
    out: list[dict[str, Any]] = []
    for r in rows:
        want = list(r["at_user_ids"])
        for u in want:
            first_text.setdefault(u, r["text"])
        if r["kind"] in DIRECT_KINDS:
            at = [u for u in want if u in r["user_ids"]]
        else:
            inside = set(r["user_ids"]) if r["user_ids"] else audience.members(session, r["conversation_id"] or "")
            at = [u for u in want if u in inside]
        reached.update(at, r["user_ids"])
        others = [names[u] for u in want if u not in at and u in names]
        out.append({**r, "at_user_ids": at, "text": audience.plain(r["text"], others)})
    for u in wanted:
        if u not in reached:
            text = audience.plain(first_text[u], names.values())
            out.append(
                row(person_key(base, u), direct, title=rows[0]["title"], text=text, created_at=created_at, user_ids=[u])
            )
    return out


# --- the writer a job uses


@dataclass(frozen=True)
class Sent:
    """A message a job wrote (or would write, in a preview)."""

    key: str
    target: str  # a conversation id, or "user:<id>,<id>"
    text: str
    at: tuple[str, ...]


@dataclass
class Outbox:
    """Writes one row at a time, each unless its key exists, and keeps what it wrote. `force`
    writes again under new keys; `groups` limits group messages to these conversations."""

    session: Session
    now: datetime
    force: bool = False
    groups: frozenset[str] | None = None
    sent: list[Sent] = field(default_factory=list)

    def allowed(self, conversation_id: str) -> bool:
        return self.groups is None or conversation_id in self.groups

    def to_group(self, key: str, cid: str, title: str, text: str, at: Iterable[str] = ()) -> bool:
        """One group message; False when this key was already written (or the group is filtered out)."""
        if not self.allowed(cid):
            return False
        at = list(dict.fromkeys(at))
        r = row(key, "group", title=title, text=text, conversation_id=cid, at_user_ids=at, created_at=self.now)
        written = [self.put(x) for x in reach(self.session, [r], key, self.now)]
        return written[0]

    def to_users(self, key: str, user_ids: Iterable[str], title: str, text: str, kind: str = "user") -> bool:
        """One message to these people: one to one with the bot (DingTalk batch send), or as
        `kind` says ("work": a work notification; "ding": a DING)."""
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return False
        return self.put(row(key, kind, title=title, text=text, user_ids=ids, created_at=self.now))

    def to_unit(
        self,
        base: str,
        unit_id: int,
        title: str,
        text: str,
        people: Iterable[str],
        each: Callable[[str], str],
        direct: str = "user",
    ) -> bool:
        """In each group of the unit, @-mentioning `people`; where the unit has no group, each
        person their own text, one to one (as `direct` says). True when anything was written."""
        ids = list(dict.fromkeys(people))
        rows = to_unit(
            self.session,
            base,
            unit_id=unit_id,
            title=title,
            text=text,
            people=ids,
            created_at=self.now,
            skip=lambda c: not self.allowed(c),
            each=each,
            direct=direct,
        )
        return any([self.put(r) for r in reach(self.session, rows, base, self.now, direct)])

    def put(self, r: dict[str, Any]) -> bool:
        if self.force:
            r["key"] = forced_key(r["key"], self.now)
        if not write(self.session, [r]):
            return False
        self.sent.append(Sent(r["key"], target(r), r["text"], tuple(r["at_user_ids"])))
        return True


# --- mentions


def mentions(text: str, at_user_ids: Iterable[str], names: Mapping[str, str]) -> str:
    """The text as DingTalk needs it: each "@name" of a person @-mentioned becomes "@<staffId>"
    (DingTalk renders a mention only from the id in the text, and shows the name)."""
    for uid in at_user_ids:
        if uid in names:
            text = text.replace(f"@{names[uid]}", f"@{uid}")
    return text
