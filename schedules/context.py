"""What a job gets: a session, the directory, the calendar, the occurrence it runs for and the
time it actually runs; and the one way it writes messages, each under an idempotency key."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlmodel import Session, select

from models import queries as q
from models.calendar import WorkdayCalendar
from models.clock import local
from models.directory import Directory
from models.tables import Issue, OutboxMessage, Person

Pairs = list[tuple[Person, Issue]]  # (owner, issue)


@dataclass(frozen=True)
class Sent:
    key: str
    target: str  # a conversation id, or "user:<id>,<id>"
    text: str
    at: tuple[str, ...]


@dataclass
class JobContext:
    session: Session
    directory: Directory
    calendar: WorkdayCalendar
    due: datetime  # the occurrence: its Shanghai date is the period the messages are about
    now: datetime  # when it really runs (later than due after a restart): the state is read as of now
    force: bool = False  # write even what was already sent (new keys); CLI --force only
    groups: frozenset[str] | None = None  # limit group messages to these conversations
    sent: list[Sent] = field(default_factory=list)

    @property
    def day(self) -> date:
        return local(self.due).date()

    def _key(self, key: str) -> str:
        return f"{key}:force:{self.now.isoformat()}" if self.force else key

    def _exists(self, key: str) -> bool:
        return self.session.exec(select(OutboxMessage.id).where(OutboxMessage.key == key)).first() is not None

    def to_group(self, key: str, cid: str, title: str, text: str, at: Iterable[str] = ()) -> bool:
        """One group message; False when this key was already written (or the group is filtered out)."""
        if self.groups is not None and cid not in self.groups:
            return False
        return self._write(OutboxMessage(key=self._key(key), kind="group", conversation_id=cid), title, text, at)

    def to_users(self, key: str, user_ids: Iterable[str], title: str, text: str) -> bool:
        """One one-to-one message (DingTalk batch send) to these people."""
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return False
        return self._write(OutboxMessage(key=self._key(key), kind="user", user_ids=ids), title, text, ())

    def groups_or_each_owner(
        self, key: str, unit_id: int, title: str, pairs: Pairs, text: Callable[[Pairs], str]
    ) -> bool:
        """One message in each group of the unit @-mentioning the owners; where the unit has no
        group, each owner hears of their own cases only, one to one."""
        cids = q.conversations_of(self.session, unit_id)
        if cids:
            at = [p.id for p, _ in pairs]
            return any([self.to_group(f"{key}:{cid}", cid, title, text(pairs), at) for cid in cids])
        by_owner: dict[str, Pairs] = defaultdict(list)
        for p, i in pairs:
            by_owner[p.id].append((p, i))
        return any([self.to_users(f"{key}:user:{pid}", [pid], title, text(mine)) for pid, mine in by_owner.items()])

    def district_groups(self) -> list[str]:
        return q.conversations_of(self.session, self.directory.district.id)

    def with_owners(self, issues: Sequence[Issue]) -> Pairs:
        people = {p.id: p for p in q.people(self.session, [i.owner_id for i in issues if i.owner_id])}
        return [(people[i.owner_id], i) for i in issues if i.owner_id in people]

    def _write(self, row: OutboxMessage, title: str, text: str, at: Iterable[str]) -> bool:
        if self._exists(row.key):
            return False
        row.title, row.text, row.at_user_ids, row.created_at = title, text, list(dict.fromkeys(at)), self.now
        self.session.add(row)
        target = row.conversation_id or "user:" + ",".join(row.user_ids)
        self.sent.append(Sent(row.key, target, text, tuple(row.at_user_ids)))
        return True
