"""A fresh PostgreSQL database per test on the local server (127.0.0.1:5432 unless
LIANDONG_TEST_POSTGRES says otherwise), dropped afterwards. Where no server answers the test is
skipped, except in CI, which has one: not reaching it there is a failure."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

psycopg = pytest.importorskip("psycopg")
SERVER = os.environ.get("LIANDONG_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def admin() -> Any:
    try:
        return psycopg.connect(SERVER, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL at {SERVER}: {e}")


@contextmanager
def fresh_database() -> Iterator[str]:
    """The SQLAlchemy URL of an empty database of its own."""
    name = f"liandong_test_{uuid.uuid4().hex[:12]}"
    with admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield SERVER.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + f"/{name}"
    finally:
        with admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
