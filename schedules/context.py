"""What a job gets: a read session, the directory, the calendar, the occurrence it runs for and
the time it actually runs; and the one way it writes messages (models.outbox), each under an
idempotency key.

A job computes on a read session (models.db.read_session: its own connection, one snapshot,
no write lock) and writes nothing while it computes: each message it asks for is queued with
the state changes that go with it (`then`: the ladder's steps and timeline events), and the
runner writes them afterwards in short transactions (`flush`), a message and its changes
always in the same one. A job that fails while computing writes nothing; a rerun after a
failure while writing finds the keys already written and skips them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session

from models import outbox
from models import queries as q
from models.calendar import WorkdayCalendar
from models.clock import local
from models.db import unit_of_work
from models.directory import Directory
from models.outbox import OUTBOX, Outbox, Sent
from models.tables import Issue, Person

__all__ = ["JobContext", "Pairs", "Sent"]

Pairs = list[tuple[Person, Issue]]  # (owner, issue)
Change = Callable[[Session], None]  # a state change made in the write transaction of its message
PER_TRANSACTION = 20  # messages (with their changes) written per short transaction


@dataclass
class Queued:
    """One message's rows and the changes that go with them: written together or not at all."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)


@dataclass
class _Queue(Outbox):
    """The job's Outbox: a row is queued, not written; a key already written (as of the read
    snapshot) or already queued is not queued again."""

    queued: list[Queued] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)

    def put(self, r: dict[str, Any]) -> bool:
        if self.force:
            r["key"] = outbox.forced_key(r["key"], self.now)
        key = r["key"]
        if key in self.keys or self.session.execute(select(OUTBOX.c.key).where(OUTBOX.c.key == key)).first():
            return False
        self.keys.add(key)
        self.queued[-1].rows.append(r)
        self.sent.append(Sent(key, outbox.target(r), r["text"], tuple(r["at_user_ids"])))
        return True


@dataclass
class JobContext:
    session: Session  # a read session: never written (see the module's docstring)
    directory: Directory
    calendar: WorkdayCalendar
    due: datetime  # the occurrence: its Shanghai date is the period the messages are about
    now: datetime  # when it really runs (later than due after a restart): the state is read as of now
    force: bool = False  # write even what was already sent (new keys); CLI --force only
    groups: frozenset[str] | None = None  # limit group messages to these conversations
    ding: bool = False  # LIANDONG_DING_OVERDUE: a DING where the ladder's last step calls for one
    sent: list[Sent] = field(default_factory=list)  # what it asked to write (a preview shows these)
    outbox: _Queue = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.outbox = _Queue(self.session, self.now, self.force, self.groups, self.sent)

    @property
    def day(self) -> date:
        return local(self.due).date()

    def _message(self) -> None:
        self.outbox.queued.append(Queued())

    def to_group(self, key: str, cid: str, title: str, text: str, at: Iterable[str] = ()) -> bool:
        """One group message; False when this key was already written (or the group is filtered out)."""
        self._message()
        return self.outbox.to_group(key, cid, title, text, at)

    def to_users(self, key: str, user_ids: Iterable[str], title: str, text: str, kind: str = "user") -> bool:
        """One one-to-one message (DingTalk batch send) to these people, or a work notification
        (kind "work") or a DING ("ding")."""
        self._message()
        return self.outbox.to_users(key, user_ids, title, text, kind)

    def groups_or_each_owner(
        self, key: str, unit_id: int, title: str, pairs: Pairs, text: Callable[[Pairs], str], direct: str = "user"
    ) -> bool:
        """One message in each group of the unit @-mentioning the owners; an owner who is not a
        member of it, or each owner where the unit has no group (their own cases only), hears of
        it directly: one to one, or as `direct` says ("work": a work notification)."""
        by_owner: dict[str, Pairs] = defaultdict(list)
        for p, i in pairs:
            by_owner[p.id].append((p, i))
        self._message()

        def each(pid: str) -> str:
            return text(by_owner[pid])

        return self.outbox.to_unit(key, unit_id, title, text(pairs), by_owner, each, direct)

    def then(self, change: Change) -> None:
        """A state change that goes with the message just asked for: made in its transaction,
        and only if that message is really written (not already there)."""
        self.outbox.queued[-1].changes.append(change)

    def flush(self, engine: Engine, per_transaction: int = PER_TRANSACTION) -> list[Sent]:
        """Write what was queued, a few messages per short transaction; what was really written
        (a key another process wrote meanwhile is skipped, with its changes)."""
        written: list[Sent] = []
        queued = [m for m in self.outbox.queued if m.rows]
        for start in range(0, len(queued), per_transaction):
            with unit_of_work(engine) as session:
                for m in queued[start : start + per_transaction]:
                    new = [r for r in m.rows if outbox.write(session, [r])]
                    if not new:
                        continue
                    for change in m.changes:
                        change(session)
                    written.extend(Sent(r["key"], outbox.target(r), r["text"], tuple(r["at_user_ids"])) for r in new)
        return written

    def district_groups(self) -> list[str]:
        return q.conversations_of(self.session, self.directory.district.id)

    def with_owners(self, issues: Sequence[Issue]) -> Pairs:
        people = {p.id: p for p in q.people(self.session, [i.owner_id for i in issues if i.owner_id])}
        return [(people[i.owner_id], i) for i in issues if i.owner_id in people]
