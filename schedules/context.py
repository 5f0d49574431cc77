"""What a job gets: a session, the directory, the calendar, the occurrence it runs for and the
time it actually runs; and the one way it writes messages (models.outbox), each under an
idempotency key."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlmodel import Session

from models import queries as q
from models.calendar import WorkdayCalendar
from models.clock import local
from models.directory import Directory
from models.outbox import Outbox, Sent
from models.tables import Issue, Person

__all__ = ["JobContext", "Pairs", "Sent"]

Pairs = list[tuple[Person, Issue]]  # (owner, issue)


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
    outbox: Outbox = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.outbox = Outbox(self.session, self.now, self.force, self.groups, self.sent)

    @property
    def day(self) -> date:
        return local(self.due).date()

    def to_group(self, key: str, cid: str, title: str, text: str, at: Iterable[str] = ()) -> bool:
        """One group message; False when this key was already written (or the group is filtered out)."""
        return self.outbox.to_group(key, cid, title, text, at)

    def to_users(self, key: str, user_ids: Iterable[str], title: str, text: str) -> bool:
        """One one-to-one message (DingTalk batch send) to these people."""
        return self.outbox.to_users(key, user_ids, title, text)

    def groups_or_each_owner(
        self, key: str, unit_id: int, title: str, pairs: Pairs, text: Callable[[Pairs], str]
    ) -> bool:
        """One message in each group of the unit @-mentioning the owners; where the unit has no
        group, each owner hears of their own cases only, one to one."""
        by_owner: dict[str, Pairs] = defaultdict(list)
        for p, i in pairs:
            by_owner[p.id].append((p, i))
        return self.outbox.to_unit(key, unit_id, title, text(pairs), by_owner, lambda pid: text(by_owner[pid]))

    def district_groups(self) -> list[str]:
        return q.conversations_of(self.session, self.directory.district.id)

    def with_owners(self, issues: Sequence[Issue]) -> Pairs:
        people = {p.id: p for p in q.people(self.session, [i.owner_id for i in issues if i.owner_id])}
        return [(people[i.owner_id], i) for i in issues if i.owner_id in people]
