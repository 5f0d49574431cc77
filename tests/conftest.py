from __future__ import annotations

import contextlib
import dataclasses
import itertools
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Row
from sqlmodel import Session, col, select

from bot.app import App, build
from bot.config import Settings
from bot.sandbox.emulator import Sent
from bot.transport.sender import CLAIM_LIMIT
from handlers.incoming import AtUser, Incoming
from models.clock import SHANGHAI, FrozenClock
from models.outbox import reply_key
from models.tables import GroupBinding, InboxMessage, Issue, IssueEvent, OutboxMessage, Person
from tests import databases

pytest_plugins = ["tests.dingtalk", "tests.web_support"]

BOT_ID = "$:LWCP_v1:$bot"
INBOX = InboxMessage.__table__  # type: ignore[attr-defined]
WEBHOOK_TTL = timedelta(minutes=90)


class Heard:
    """What came of a chat message, seen from outside: the reply DingTalk received through the
    message's session webhook, and the outcome the inbox recorded. Inside `Chat.batched()` the
    reply is read when first asked for (everything said so far is sent then)."""

    __slots__ = ("_chat", "issue_id", "msg_id", "outcome")

    def __init__(self, chat: Chat, msg_id: str, outcome: str, issue_id: int | None) -> None:
        self._chat, self.msg_id = chat, msg_id
        self.outcome = outcome  # ok | refused | error, or duplicate when the msgId had been processed before
        self.issue_id = issue_id

    @property
    def sent(self) -> Sent:
        """The reply as it went over the wire (text with @<staffId>)."""
        return self._chat.reply_to(self.msg_id)

    @property
    def reply(self) -> str:
        """As the DingTalk client shows it: an @<staffId> of someone in `at` reads @name."""
        return self._chat.shown(self.sent)

    @property
    def at(self) -> tuple[str, ...]:
        """The at.atUserIds DingTalk received."""
        return tuple(self.sent.at_user_ids)

    def __repr__(self) -> str:
        return f"Heard({self.msg_id!r}, {self.outcome!r}, issue_id={self.issue_id!r})"


class Chat:
    """Drives the dispatcher the way a transport would, with DingTalk-shaped Incoming; then the
    real outbox sender delivers to a recording DingTalk, and `say` answers what it received."""

    def __init__(self, app: App, clock: FrozenClock) -> None:
        self.app = app
        self.clock = clock
        self.ids = itertools.count(1)
        self.at = datetime(2020, 3, 2, 9, 0, tzinfo=SHANGHAI)  # a Monday
        from tests.dingtalk import recording_dingtalk  # a plugin of this conftest: imported once it is registered

        self.dingtalk = recording_dingtalk()
        self.dingtalk.reset()
        self.send_clock = FrozenClock(clock.at)  # the sender's now: when the message was answered
        self.sender = self.dingtalk.sender(app.engine, self.send_clock)
        self.received: list[Sent] = []  # everything DingTalk received from this bot, in order
        self._webhooks: dict[str, str] = {}  # msgId → the session webhook its Incoming carries
        self._replies: dict[str, list[Sent]] = {}  # session webhook → what came through it
        self._waiting: dict[str, datetime] = {}  # msgId → when it was answered, not yet sent
        self._batching = False

    def group_of(self, person_id: str) -> str:
        with Session(self.app.engine) as s:
            person = s.get(Person, person_id)
            assert person is not None
            b = s.exec(select(GroupBinding).where(GroupBinding.unit_id == person.unit_id)).first()
            return b.conversation_id if b else "cid-district"

    def say(
        self,
        person: str,
        text: str,
        *,
        mentions: tuple[str, ...] = (),
        at: datetime | None = None,
        msg_id: str | None = None,
        cid: str | None = None,
        msgtype: str = "text",
    ) -> Heard:
        if at is not None:
            self.at = at
        self.clock.at = self.at
        msg = Incoming(
            msg_id=msg_id or f"msg{next(self.ids)}",
            conversation_id=cid or self.group_of(person),
            sender_staff_id=person,
            sender_nick=person,
            text=" " + text,
            create_at=self.at,
            at_users=(AtUser(dingtalk_id=BOT_ID), *(AtUser(staff_id=m) for m in mentions)),
            bot_user_id=BOT_ID,
            msgtype=msgtype,
        )
        return self.send(msg)

    def send(self, msg: Incoming) -> Heard:
        """One Incoming as the transport hands it over (a session webhook added where it has
        none), then the outbox sent: what DingTalk received in reply."""
        if msg.session_webhook is None:
            webhook = self.webhook(msg.msg_id, msg.conversation_id)
            msg = dataclasses.replace(msg, session_webhook=webhook, session_webhook_expires=self.clock.at + WEBHOOK_TTL)
        else:
            self._webhooks.setdefault(msg.msg_id, msg.session_webhook)
        fresh = self.app.dispatcher.receive(msg)
        before = None if fresh else self._inbox(msg.msg_id)
        self.app.dispatcher.process(msg.msg_id)
        return self._heard(msg.msg_id, before)

    def process(self, msg_id: str) -> Heard:
        """Process a message already stored (a redelivery, or after a restart); what DingTalk received."""
        before = self._inbox(msg_id)
        self.app.dispatcher.process(msg_id)
        return self._heard(msg_id, before)

    @contextlib.contextmanager
    def batched(self) -> Iterator[None]:
        """For seeding many messages: the outbox is sent when a reply is asked for, every
        CLAIM_LIMIT messages, and at the end, as of the earliest message not yet answered
        (each reply still through its own session webhook, each checked to arrive once)."""
        self._batching = True
        try:
            yield
        finally:
            self._batching = False
        self.deliver()

    def webhook(self, msg_id: str, conversation_id: str) -> str:
        """The session webhook of a msgId: DingTalk gives every message its own."""
        if msg_id not in self._webhooks:
            self._webhooks[msg_id] = self.dingtalk.emulator.open_session(conversation_id)
        return self._webhooks[msg_id]

    def deliver(self) -> list[Sent]:
        """Run the outbox sender on what is due; what DingTalk received meanwhile. Every message
        answered since the last delivery must have had exactly one reply, else this fails."""
        self.send_clock.at = min(self._waiting.values(), default=self.clock.at)
        new = self.dingtalk.deliver(self.sender)
        self.received.extend(new)
        for s in new:
            if s.webhook:
                self._replies.setdefault(s.webhook, []).append(s)
        waiting, self._waiting = self._waiting, {}
        for msg_id in waiting:
            self.reply_to(msg_id)
        return new

    def reply_to(self, msg_id: str) -> Sent:
        """The one message DingTalk received through this msgId's session webhook."""
        if msg_id in self._waiting:
            self.deliver()
        replies = self._replies.get(self._webhooks.get(msg_id, ""), [])
        if len(replies) != 1:
            with Session(self.app.engine) as s:
                row = s.exec(select(OutboxMessage).where(OutboxMessage.key == reply_key(msg_id))).first()
            state = (row.status, row.attempts, row.last_error, row.channel) if row else "no outbox row"
            raise AssertionError(
                f"the reply to {msg_id} reached DingTalk {len(replies)} times through its session webhook "
                f"(outbox row: {state})"
            )
        return replies[0]

    def received_in(self, conversation_id: str) -> list[Sent]:
        """What DingTalk received for one conversation, whichever way it was sent."""
        return [s for s in self.received if s.conversation_id == conversation_id]

    def received_by(self, staff_id: str) -> list[Sent]:
        """The one-to-one messages DingTalk received for one person."""
        return [s for s in self.received if s.channel == "user" and staff_id in s.user_ids]

    def shown(self, sent: Sent) -> str:
        r"""A message as the DingTalk client shows it: markdown's line breaks (two spaces before
        `\n`) as breaks and a lone `\n` as a space, `\*` as a star (models/markdown.py), and an
        @<staffId> of someone @-mentioned as @name; anything else exactly as sent."""
        text = re.sub(r"(?<![ \n])\n(?!\n)", " ", sent.text).replace("  \n", "\n").replace("\\*", "*")
        if sent.at_user_ids:
            with Session(self.app.engine) as s:
                names = dict(s.exec(select(Person.id, Person.name).where(col(Person.id).in_(sent.at_user_ids))).all())
            for uid in sorted(names, key=len, reverse=True):
                text = text.replace(f"@{uid}", f"@{names[uid]}")
        return text

    def _heard(self, msg_id: str, before: Row[Any] | None) -> Heard:
        inbox = self._inbox(msg_id)
        assert inbox is not None and inbox.status == "done", (msg_id, inbox)
        duplicate = before is not None and before.status == "done"
        heard = Heard(self, msg_id, "duplicate" if duplicate else inbox.outcome or "", inbox.issue_id)
        self._waiting.setdefault(msg_id, self.clock.at)
        if not self._batching or len(self._waiting) >= CLAIM_LIMIT:
            self.deliver()
        return heard

    def _inbox(self, msg_id: str) -> Row[Any] | None:
        with self.app.engine.connect() as c:
            return c.execute(
                select(INBOX.c.status, INBOX.c.outcome, INBOX.c.issue_id).where(INBOX.c.msg_id == msg_id)
            ).first()

    def issue(self, number: int) -> Issue:
        with Session(self.app.engine) as s:
            issue = s.get(Issue, number)
            assert issue is not None
            return issue

    def state(self) -> tuple:
        """Everything a message could change, to assert that a refusal changed nothing."""
        with Session(self.app.engine) as s:
            issues = [i.model_dump() for i in s.exec(select(Issue).order_by(Issue.id))]
            events = len(s.exec(select(IssueEvent)).all())
            people = [p.model_dump() for p in s.exec(select(Person).order_by(Person.id))]
            groups = [g.model_dump() for g in s.exec(select(GroupBinding).order_by(GroupBinding.conversation_id))]
        return issues, events, people, groups

    def outbox(self) -> list[OutboxMessage]:
        with Session(self.app.engine) as s:
            return list(s.exec(select(OutboxMessage).order_by(OutboxMessage.id)))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not databases.ON_POSTGRES:
        return
    for item in items:
        if mark := item.get_closest_marker("sqlite_only"):
            reason = mark.args[0] if mark.args else "SQLite itself"
            item.add_marker(pytest.mark.skip(reason=f"the PostgreSQL leg: {reason}"))


@pytest.fixture(scope="session", autouse=True)
def _session_databases() -> Iterator[None]:
    yield
    databases.close()


@pytest.fixture(autouse=True)
def _test_databases() -> Iterator[None]:
    """The PostgreSQL databases a test made are dropped when it ends. Autouse and function-scoped,
    so it is set up after every wider fixture (whose databases live on) and torn down last."""
    mark = databases.mark()
    yield
    databases.drop_after(mark)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2020, 3, 2, 9, 0, tzinfo=SHANGHAI))


@pytest.fixture
def app(tmp_path: Path, clock: FrozenClock) -> Iterator[App]:
    application = build(Settings(database_url=databases.database_url(tmp_path), photos_dir=tmp_path / "photos"), clock)
    yield application
    application.engine.dispose()


@pytest.fixture
def chat(app: App, clock: FrozenClock) -> Chat:
    return Chat(app, clock)
