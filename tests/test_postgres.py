"""The same core scenarios on PostgreSQL (production's database): the lifecycle through the
dispatcher, the scripted 2020 paragraph, and the hash chains. Each test gets a fresh database on
the local server at 127.0.0.1:5432 (CI has one; elsewhere the tests skip when none answers)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime

import pytest
from sqlmodel import Session

from bot.app import App, build
from bot.config import Settings
from models.clock import SHANGHAI, FrozenClock
from models.verify import verify_chains
from tests import test_lifecycle
from tests.conftest import Chat
from tests.postgres import fresh_database
from tests.test_year_report import PARAGRAPH, Year, at, script_2020

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_app() -> Iterator[tuple[App, FrozenClock]]:
    with fresh_database() as url:
        clock = FrozenClock(datetime(2020, 3, 2, 9, 0, tzinfo=SHANGHAI))
        app = build(Settings(database_url=url), clock)
        try:
            yield app, clock
        finally:
            app.engine.dispose()


def test_full_life_of_an_issue_on_postgres(pg_app: tuple[App, FrozenClock]) -> None:
    app, clock = pg_app
    chat = Chat(app, clock)
    test_lifecycle.test_full_life_of_an_issue(chat)
    with Session(app.engine) as s:
        assert verify_chains(s) == []


def test_scripted_2020_gives_the_reported_paragraph_on_postgres(pg_app: tuple[App, FrozenClock]) -> None:
    app, clock = pg_app
    y = Year(Chat(app, clock))
    script_2020(y)
    r = y.chat.say("d001", "统计 2020 原文", at=at(date(2021, 1, 15)))
    assert r.reply.splitlines() == ["【统计】2020年 · 柯城区", PARAGRAPH]
