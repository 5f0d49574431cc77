from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlmodel import Session, select

from bot.app import App, build
from bot.config import Settings
from bot.dispatch import Outcome
from handlers.incoming import AtUser, Incoming
from models.clock import SHANGHAI, FrozenClock
from models.tables import GroupBinding, Issue, IssueEvent, OutboxMessage, Person

pytest_plugins = ["tests.dingtalk", "tests.web_support"]

BOT_ID = "$:LWCP_v1:$bot"


class Chat:
    """Drives the dispatcher the way a transport would, with DingTalk-shaped Incoming."""

    def __init__(self, app: App, clock: FrozenClock) -> None:
        self.app = app
        self.clock = clock
        self.ids = itertools.count(1)
        self.at = datetime(2020, 3, 2, 9, 0, tzinfo=SHANGHAI)  # a Monday

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
    ) -> Outcome:
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
            session_webhook="http://127.0.0.1:1/session",
            msgtype=msgtype,
        )
        return self.app.dispatcher.dispatch(msg)

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


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2020, 3, 2, 9, 0, tzinfo=SHANGHAI))


@pytest.fixture
def app(tmp_path: Path, clock: FrozenClock) -> Iterator[App]:
    application = build(Settings(database_url=f"sqlite:///{tmp_path}/t.db"), clock)
    yield application
    application.engine.dispose()


@pytest.fixture
def chat(app: App, clock: FrozenClock) -> Chat:
    return Chat(app, clock)
