"""Migrations from an empty database to head, on SQLite and on PostgreSQL, whichever leg runs:
head is exactly the models (Alembic's autogenerate finds nothing to add, drop or alter), the
history has one head, down to nothing and up again works, and migrating twice changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect
from sqlmodel import SQLModel

from models.db import alembic_config, make_engine, migrate
from tests.postgres import fresh_database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a database no migration has touched."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path}/m.db")
        yield engine
        engine.dispose()
        return
    with fresh_database() as url:
        engine = make_engine(url)
        yield engine
        engine.dispose()


def diff(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata))


def heads(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def test_the_history_has_one_head() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1, script.get_heads()


def test_empty_to_head_gives_exactly_the_models(empty: Engine) -> None:
    assert inspect(empty).get_table_names() == []
    migrate(empty)
    assert diff(empty) == []
    tables = set(inspect(empty).get_table_names())
    assert tables == set(SQLModel.metadata.tables) | {"alembic_version"}
    migrate(empty)  # idempotent
    assert diff(empty) == []


def test_down_to_nothing_and_up_again(empty: Engine) -> None:
    """Every downgrade undoes its upgrade well enough that the upgrades run again (a deploy
    rolled back and forward)."""
    migrate(empty)
    head = heads(empty)
    with empty.begin() as conn:
        cfg = alembic_config(empty.url.render_as_string(hide_password=False))
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert heads(empty) == set()
    assert set(inspect(empty).get_table_names()) <= {"alembic_version"}
    migrate(empty)
    assert heads(empty) == head and diff(empty) == []
