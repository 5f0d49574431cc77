"""The engine and the unit of work. Query functions take a session and never commit:
the unit of work commits once, so a change, its events and its outbox rows land together."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Any
from urllib.parse import quote

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import DatabaseError, DBAPIError, InvalidatePoolError, OperationalError
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection
from sqlmodel import Session

DEFAULT_URL = "sqlite:///./data/liandong.db"
BUSY_TIMEOUT_S = 30.0
WRITE_OPTION = "liandong_writes"  # marks a unit of work's connection: SQLite takes the write lock at BEGIN
MIGRATIONS = Path(__file__).parent / "migrations"
NOT_MIGRATED = "数据库尚未初始化或版本过旧,请先运行 liandong migrate"


class Access(Enum):
    """How a process opens the database."""

    PREPARE = "prepare"  # migrate and write the org rows: SQLite's file (and folder) are made when missing
    WRITE = "write"  # an existing database, written (never created: a missing SQLite file is an error)
    READ = "read"  # an existing database through a connection that cannot write


class SchemaNotReady(RuntimeError):
    """The database has no schema, or not this code's: one line, in Chinese, for the user."""


def make_engine(url: str, access: Access = Access.PREPARE) -> Engine:
    """READ is enforced by the database itself: SQLite opens the file with mode=ro (and
    query_only), PostgreSQL runs every transaction read-only."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url, access)
    if access is Access.READ and make_url(url).get_backend_name() == "postgresql":
        return create_engine(url, pool_pre_ping=True, connect_args={"options": "-c default_transaction_read_only=on"})
    return create_engine(url, pool_pre_ping=True)


def busy_timeout_s(url: str) -> float:
    """How long a SQLite statement waits for another writer's lock before it fails: the URL's
    `?timeout=` (seconds, as pysqlite reads it), else 30 s. Fault tests shorten it this way."""
    raw = make_url(url).query.get("timeout")
    value = raw[0] if isinstance(raw, tuple) else raw
    return float(value) if value else BUSY_TIMEOUT_S


def _sqlite_engine(url: str, access: Access) -> Engine:
    path = make_url(url).database or ""
    on_disk = path not in ("", ":memory:") and not path.startswith("file:")
    busy_s = busy_timeout_s(url)
    connect_args: dict[str, Any] = {"check_same_thread": False, "timeout": busy_s}
    if on_disk and access is Access.PREPARE:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    if on_disk and access is not Access.PREPARE:
        # A URI, so that the file is never created (mode=rw) or never written (mode=ro).
        uri = f"file:{quote(str(Path(path).absolute()))}?mode={'ro' if access is Access.READ else 'rw'}"
        engine = create_engine(url, creator=lambda: sqlite3.connect(uri, uri=True, **connect_args))
        _watch_file(engine, Path(path).absolute())
    else:
        engine = create_engine(url, connect_args=connect_args)
    busy_ms = int(busy_s * 1000)
    event.listen(engine, "handle_error", _sqlite_reopen_after)
    if access is Access.READ:
        event.listen(engine, "connect", lambda c, r: _sqlite_read_pragmas(c, busy_ms))
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
        return engine
    event.listen(engine, "connect", lambda c, r: _sqlite_pragmas(c, busy_ms))
    # pysqlite's own transaction handling defers BEGIN; emit it ourselves so that a
    # read-then-write unit of work holds the write lock from its start, while a read-only
    # session (the only other kind: every write goes through unit_of_work) never blocks writers.
    event.listen(engine, "begin", _sqlite_begin)
    return engine


FILE_KEY = "liandong_file"  # a pooled connection's (device, inode) of the file it opened


class DatabaseFileGone(sqlite3.OperationalError):
    """The database file was deleted or replaced while this process had it open."""


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _watch_file(engine: Engine, path: Path) -> None:
    """A SQLite connection keeps the file it opened even once that file is deleted or replaced:
    it would go on committing into an unlinked inode (acknowledged, then gone) or into the old
    copy. So every checkout and every commit compares the path's file with the connection's;
    when they differ the pool's connections are dropped (a new one, mode=rw, fails while the
    file is missing and never creates an empty one in its place), and a commit is refused, which
    the caller sees as an outage ("missing") and retries once the file is back."""

    def connected(dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
        record.info[FILE_KEY] = _file_id(path)

    def checkout(dbapi_conn: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection) -> None:
        if record.info.get(FILE_KEY) != _file_id(path):
            raise InvalidatePoolError("the database file was deleted or replaced")

    def commit(conn: Connection) -> None:
        if conn.info.get(FILE_KEY) != _file_id(path):
            raise OperationalError("COMMIT", None, DatabaseFileGone("database file missing or replaced"))

    event.listen(engine, "connect", connected)
    event.listen(engine, "checkout", checkout)
    event.listen(engine, "commit", commit)


def _sqlite_begin(conn) -> None:  # type: ignore[no-untyped-def]
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "BEGIN")


def _sqlite_read_pragmas(dbapi_conn, busy_ms: int) -> None:  # type: ignore[no-untyped-def]
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA query_only=ON")
    cur.execute(f"PRAGMA busy_timeout={busy_ms}")
    cur.close()


def _sqlite_pragmas(dbapi_conn, busy_ms: int) -> None:  # type: ignore[no-untyped-def]
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={busy_ms}")
    cur.close()


# SQLite's errors that a fresh connection may cure: a file opened while it was read-only (or
# missing, or on a failing disk) stays that way for the connection's life, even once the file is
# writable again, so such a connection must be dropped rather than handed back to the pool.
# A file that is no database (replaced) or whose pages are garbage (overwritten) is the same.
_REOPEN = ("readonly database", "unable to open", "disk i/o error", "not a database", "malformed")
_CORRUPT = ("not a database", "malformed")


def _sqlite_reopen_after(ctx) -> None:  # type: ignore[no-untyped-def]
    if not isinstance(ctx.original_exception, sqlite3.DatabaseError) or not any(
        m in str(ctx.original_exception).lower() for m in _REOPEN
    ):
        return
    if _query_only(ctx.connection):  # a read session refusing a write: the file is fine
        return
    ctx.is_disconnect = True  # the pool discards this connection (and the others opened before it)


def _query_only(conn) -> bool:  # type: ignore[no-untyped-def]
    try:
        raw = conn.connection.dbapi_connection if conn is not None else None
        return raw is not None and raw.execute("PRAGMA query_only").fetchone()[0] == 1
    except Exception:  # the connection is unusable: no read session to protect
        return False


def outage(e: BaseException) -> str | None:
    """Why the database cannot be used right now, in a word, when `e` says so (it is not this
    message's fault, and retrying later will work); None for any other error. A SQLite file
    that is missing or no database any more is an outage too: no message could be stored, and
    putting the file back (or a restored copy) is the fix."""
    if isinstance(e, DatabaseFileGone) or isinstance(getattr(e, "orig", None), DatabaseFileGone):
        return "missing"
    if isinstance(e, DatabaseError | sqlite3.DatabaseError) and any(m in str(e).lower() for m in _CORRUPT):
        return "corrupt"
    if not isinstance(e, OperationalError | sqlite3.OperationalError):
        if isinstance(e, DBAPIError) and e.connection_invalidated:
            return "unavailable"
        return None
    text = str(e).lower()
    if "locked" in text or "busy" in text or "lock timeout" in text:
        return "locked"
    if "readonly" in text or "read-only" in text:
        return "read-only"
    if "unable to open database file" in text:  # SQLite's mode=rw on a file that is not there
        return "missing"
    return "unavailable"


@contextmanager
def unit_of_work(engine: Engine) -> Iterator[Session]:
    """One session, one commit; any exception rolls everything back."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            session.connection(execution_options={WRITE_OPTION: True})
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A session for a long read (a report, a job's counts) on a connection of its own, never
    inside a write transaction: it sees one snapshot for its whole life and cannot write.
    SQLite: a deferred BEGIN in WAL mode (its snapshot from the first read; writers go on),
    query_only for its duration. PostgreSQL: REPEATABLE READ, READ ONLY. Always rolled back."""
    with Session(engine, expire_on_commit=False) as session:
        if engine.dialect.name == "postgresql":
            session.connection(execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True})
            try:
                yield session
            finally:
                session.rollback()
            return
        raw: Any = session.connection().connection.dbapi_connection
        raw.execute("PRAGMA query_only=ON")
        try:
            yield session
        finally:
            # Writable again before the pool hands the connection to a unit of work (on the
            # driver's connection: the session may be in a failed state here).
            raw.execute("PRAGMA query_only=OFF")
            session.rollback()


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def require_schema(engine: Engine) -> None:
    """Raise SchemaNotReady unless the database is at this code's newest migration. Reads only."""
    script = ScriptDirectory.from_config(alembic_config(engine.url.render_as_string(hide_password=False)))
    try:
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
    except OperationalError as e:
        if engine.dialect.name == "sqlite":  # no such file: never migrated
            raise SchemaNotReady(NOT_MIGRATED) from e
        raise
    except DatabaseError as e:
        if engine.dialect.name == "sqlite":
            raise SchemaNotReady(f"无法读取数据库文件 ({e.orig}),请检查 DATABASE_URL") from e
        raise
    if current == set(script.get_heads()):
        return
    known = {rev.revision for rev in script.walk_revisions()}
    if current - known:
        raise SchemaNotReady(f"数据库版本 ({'、'.join(sorted(current - known))}) 比本程序新,请升级 liandong")
    raise SchemaNotReady(NOT_MIGRATED)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")  # feature branches of the history may run side by side
