"""The same core scenarios on PostgreSQL (production's database): the lifecycle through the
dispatcher, the scripted 2020 paragraph, and the hash chains. Each test gets a fresh database on
the local server at 127.0.0.1:5432 (CI has one; elsewhere the tests skip when none answers)."""

from __future__ import annotations

import os
import uuid
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
from tests.test_year_report import PARAGRAPH, Year, at, script_2020

psycopg = pytest.importorskip("psycopg")
SERVER = os.environ.get("LIANDONG_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def _admin() -> psycopg.Connection:
    try:
        return psycopg.connect(SERVER, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as e:
        if os.environ.get("CI"):
            raise  # CI has a PostgreSQL server: not reaching it is a failure
        pytest.skip(f"no PostgreSQL at {SERVER}: {e}")


@pytest.fixture
def pg_app() -> Iterator[tuple[App, FrozenClock]]:
    name = f"liandong_test_{uuid.uuid4().hex[:12]}"
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = SERVER.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + f"/{name}"
    clock = FrozenClock(datetime(2020, 3, 2, 9, 0, tzinfo=SHANGHAI))
    app = build(Settings(database_url=url), clock)
    try:
        yield app, clock
    finally:
        app.engine.dispose()
        with _admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
    r = y.chat.say("d001", "统计 2020", at=at(date(2021, 1, 15)))
    assert r.reply.splitlines() == ["【统计】2020年 · 柯城区", PARAGRAPH]
