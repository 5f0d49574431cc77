"""The database file watch (models.db): a SQLite file deleted or replaced under open
connections is an outage ("missing", "corrupt"), even for a commit already under way; no
connection creates the file again; a restored file is used at once."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from bot.web.context import reader
from models.db import Access, make_engine, outage, unit_of_work


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "x.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (a INTEGER)"))
    engine.dispose()
    return path


def insert(engine: Engine, value: int) -> None:
    with unit_of_work(engine) as session:
        session.execute(text("INSERT INTO t VALUES (:v)"), {"v": value})


def rows(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [a for (a,) in conn.execute("SELECT a FROM t ORDER BY a")]


def delete(path: Path) -> None:
    for side in ("", "-wal", "-shm"):
        Path(f"{path}{side}").unlink(missing_ok=True)


def test_a_commit_under_way_when_the_file_is_deleted_is_refused_as_missing(db: Path) -> None:
    engine = make_engine(f"sqlite:///{db}", Access.WRITE)
    insert(engine, 1)
    copy = db.with_suffix(".copy")
    with sqlite3.connect(db) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    with pytest.raises(DBAPIError) as e, unit_of_work(engine) as session:
        session.execute(text("INSERT INTO t VALUES (2)"))
        delete(db)  # between the statement and the commit
    assert outage(e.value) == "missing"
    with pytest.raises(DBAPIError) as again:
        insert(engine, 3)
    assert outage(again.value) == "missing" and not db.exists()  # never made again, empty
    shutil.move(copy, db)
    insert(engine, 4)  # the restored file, at once
    assert rows(db) == [1, 4]
    engine.dispose()


def test_a_file_replaced_by_one_that_is_no_database_is_corrupt(db: Path) -> None:
    engine = make_engine(f"sqlite:///{db}", Access.WRITE)
    insert(engine, 1)
    delete(db)
    db.write_bytes(b"garbage " * 1000)
    with pytest.raises(DBAPIError) as e:
        insert(engine, 2)
    assert outage(e.value) == "corrupt"
    engine.dispose()


def test_the_web_reader_never_creates_the_file(db: Path) -> None:
    engine = make_engine(f"sqlite:///{db}", Access.WRITE)
    web = reader(engine)
    with web.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 0
    delete(db)
    with pytest.raises(DBAPIError) as e, web.connect() as conn:
        conn.execute(text("SELECT count(*) FROM t"))
    assert outage(e.value) == "missing" and not db.exists()
    web.dispose()
    engine.dispose()
