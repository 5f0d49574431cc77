"""PostgreSQL for the tests: the server, a fresh database of a test's own (`fresh_database`), and
the PostgreSQL leg's databases (`Clones`: every database a test asks for is cloned from a
template migrated once per worker).

The server is LIANDONG_TEST_DATABASE_URL's when set (the PostgreSQL leg: the whole suite runs on
it), else LIANDONG_TEST_POSTGRES's, else the local one at 127.0.0.1:5432. The database a URL names
is only where the admin connection goes: the tests create and drop databases of their own
(liandong_test_*, liandong_t_*), which needs the CREATEDB privilege.

Where no server answers, a test that needs one is skipped, except in CI or with
LIANDONG_REQUIRE_POSTGRES set: not reaching it there is a failure.

`python -m tests.postgres` exits 0 when the server answers, 1 (with the reason) when not."""

from __future__ import annotations

import itertools
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from sqlalchemy import make_url

LEG_ENV = "LIANDONG_TEST_DATABASE_URL"
REQUIRE_ENV = "LIANDONG_REQUIRE_POSTGRES"
LEG_URL = os.environ.get(LEG_ENV) or None
SERVER = make_url(
    LEG_URL or os.environ.get("LIANDONG_TEST_POSTGRES") or "postgresql://postgres@127.0.0.1:5432/postgres"
)


def required() -> bool:
    return bool(os.environ.get("CI") or os.environ.get(REQUIRE_ENV))


def url_of(database: str) -> str:
    """The SQLAlchemy URL of one database on the server (psycopg 3, as production's)."""
    return SERVER.set(drivername="postgresql+psycopg", database=database).render_as_string(hide_password=False)


def conninfo() -> str:
    """The server for psycopg (libpq takes no SQLAlchemy driver name)."""
    return SERVER.set(drivername="postgresql").render_as_string(hide_password=False)


def admin() -> Any:
    try:
        return psycopg.connect(conninfo(), autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as e:
        if required():
            raise
        pytest.skip(f"no PostgreSQL at {SERVER.render_as_string(hide_password=True)}: {e}")


@contextmanager
def fresh_database() -> Iterator[str]:
    """The SQLAlchemy URL of an empty database of its own."""
    name = f"liandong_test_{uuid.uuid4().hex[:12]}"
    with admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url_of(name)
    finally:
        with admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Clones:
    """The PostgreSQL leg's databases, one worker's (xdist or not). A clean database per test is
    what SQLite's file in tmp_path gives; on PostgreSQL, `CREATE DATABASE … TEMPLATE` of a
    database migrated once is the fastest way there (measured on this server: 0.11 s a clone
    against 1.2 s for resetting the `public` schema and migrating it; truncating every table, 0.25 s,
    would also keep whatever a test did to the schema)."""

    def __init__(self) -> None:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        self.prefix = f"liandong_t_{uuid.uuid4().hex[:8]}_{worker}"
        self._numbers = itertools.count(1)
        self._conn: Any = None
        self._template: str | None = None
        self.live: list[str] = []  # in the order created

    def clone(self, *, migrated: bool = True, of: str | None = None) -> str:
        """A new database: a copy of the template at head (no rows), an empty one, or a copy of
        the database `of` names (which nobody may be connected to)."""
        name = f"{self.prefix}_{next(self._numbers)}"
        template = make_url(of).database if of else self._migrated_template() if migrated else "template0"
        self._admin().execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        self.live.append(name)
        return url_of(name)

    def drop_after(self, mark: int) -> None:
        """Drop every database created since `len(self.live)` was `mark` (FORCE: a test may have
        left connections open)."""
        while len(self.live) > mark:
            self._admin().execute(f'DROP DATABASE IF EXISTS "{self.live.pop()}" WITH (FORCE)')

    def close(self) -> None:
        self.drop_after(0)
        if self._template is not None:
            self._admin().execute(f'DROP DATABASE IF EXISTS "{self._template}" WITH (FORCE)')
            self._template = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _migrated_template(self) -> str:
        if self._template is None:
            from models.db import make_engine, migrate

            name = f"{self.prefix}_template"
            self._admin().execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
            self._template = name
            engine = make_engine(url_of(name))
            try:
                migrate(engine)
            finally:
                engine.dispose()  # CREATE DATABASE … TEMPLATE refuses a template with sessions
        return self._template

    def _admin(self) -> Any:
        if self._conn is None or self._conn.closed:
            self._conn = admin()
        return self._conn


def main() -> int:
    where = SERVER.render_as_string(hide_password=True)
    try:
        psycopg.connect(
            SERVER.set(drivername="postgresql").render_as_string(hide_password=False), connect_timeout=3
        ).close()
    except psycopg.Error as e:
        print(f"no PostgreSQL at {where}: {str(e).strip()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
