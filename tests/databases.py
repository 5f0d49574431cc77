"""The database a test builds its app on: a SQLite file in the test's directory, or on the
PostgreSQL leg (LIANDONG_TEST_DATABASE_URL set) a clean database of its own on that server.

`database_url(directory, name)` is the one way a test names its database: the same directory and
name give the same database within a test (as reopening a file does), another name another one.
PostgreSQL databases are dropped when the test that made them ends (those made by a fixture of a
wider scope, at the end of the session): tests/conftest.py does that."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests import postgres

ON_POSTGRES = postgres.LEG_URL is not None

# Tests about SQLite itself (its file, WAL, file locking, read-only files): skipped on the
# PostgreSQL leg, where the same behaviour is PostgreSQL's and tested as such.
sqlite_only = pytest.mark.sqlite_only

_clones = postgres.Clones() if ON_POSTGRES else None
_named: dict[tuple[str, str], str] = {}


def database_url(directory: Path, name: str = "t", *, migrated: bool = True) -> str:
    """`migrated=False` where a test needs a database no migration has touched; on SQLite every
    new file is one, on PostgreSQL the default is a clone of the migrated template, which is what
    `build` leaves anyway (its migration then has nothing to do)."""
    if _clones is None:
        return f"sqlite:///{directory}/{name}.db"
    key = (str(directory), name)
    if key not in _named:
        _named[key] = _clones.clone(migrated=migrated)
    return _named[key]


def copy_of(source: str, directory: Path, name: str = "t") -> str:
    """A database of its own holding what `source` (a `database_url`, its engines disposed) holds:
    a copy of a seeded database is cheaper than seeding it again for every test."""
    if _clones is None:
        shutil.copy(source.removeprefix("sqlite:///"), directory / f"{name}.db")
        return database_url(directory, name)
    key = (str(directory), name)
    assert key not in _named, f"{name} is already a database of this test"
    _named[key] = _clones.clone(of=source)
    return _named[key]


def mark() -> int:
    return len(_clones.live) if _clones else 0


def drop_after(mark: int) -> None:
    if _clones is None:
        return
    gone = set(_clones.live[mark:])
    _clones.drop_after(mark)
    for key in [k for k, url in _named.items() if url.rsplit("/", 1)[-1] in gone]:
        del _named[key]


def close() -> None:
    if _clones is not None:
        _clones.close()
        _named.clear()
