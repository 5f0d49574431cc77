"""Only one process runs the jobs: the leader, holder of a lock that the operating system (or
the database) releases when the process dies, so another process can take over.

For SQLite the lock is an flock on a file beside the database. For PostgreSQL it is a
session-level advisory lock held on a connection of its own: the server releases it the
moment that connection ends (the process died, or the network between them failed), whichever
host the processes run on."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Protocol

from sqlalchemy import URL, make_url

log = logging.getLogger(__name__)


class LeaderLock(Protocol):
    def acquire(self) -> bool:
        """Try once, without waiting; True when this process now leads (or already did)."""
        ...

    def release(self) -> None: ...


class FileLock:
    """An exclusive flock: held until released or until the process dies. Two FileLocks on one
    path exclude each other even inside one process (each opens its own file description)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def acquire(self) -> bool:
        if self._file is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115  (held open while leading)
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            return False
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")  # for whoever wonders which process leads
        f.flush()
        self._file = f
        return True

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    @property
    def held(self) -> bool:
        return self._file is not None


class AdvisoryLock:
    """`pg_try_advisory_lock` on a dedicated autocommit connection (never one of the pool's,
    which would hand the lock to whatever borrows it next). `acquire` while holding checks that
    the connection still lives: if it died, so did the lock, and it is tried again afresh."""

    KEY = int.from_bytes(hashlib.sha256(b"liandong.scheduler").digest()[:8], "big", signed=True)

    def __init__(self, url: URL, key: int = KEY) -> None:
        self.conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.key = key
        self._conn: Any = None

    def acquire(self) -> bool:
        import psycopg

        if self._conn is not None:
            try:
                self._conn.execute("SELECT 1")
                return True
            except psycopg.Error:
                log.warning("scheduler leader lock: its connection was lost; trying again")
                self._close()
        try:
            conn = psycopg.connect(
                self.conninfo,
                autocommit=True,
                connect_timeout=5,
                application_name="liandong-leader",
                # A leader cut off from the server is noticed (and its lock freed) within ~30 s.
                keepalives=1,
                keepalives_idle=10,
                keepalives_interval=5,
                keepalives_count=3,
            )
        except psycopg.Error as e:
            log.warning("scheduler leader lock: cannot connect (%s)", e)
            return False
        try:
            got = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        except psycopg.Error:
            conn.close()
            return False
        if got and got[0]:
            self._conn = conn
            return True
        conn.close()
        return False

    def release(self) -> None:
        if self._conn is not None:
            import psycopg

            with contextlib.suppress(psycopg.Error):
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
            self._close()

    def _close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()
        self._conn = None

    @property
    def held(self) -> bool:
        return self._conn is not None


def leader_lock(database_url: str) -> LeaderLock:
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        return AdvisoryLock(url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return FileLock(Path(url.database).resolve().with_name(Path(url.database).name + ".scheduler.lock"))
    # An in-memory SQLite or another database: this only excludes processes on the same host.
    digest = hashlib.sha256(url.render_as_string(hide_password=True).encode()).hexdigest()[:16]
    if url.get_backend_name() != "sqlite":
        log.warning("scheduler leader lock: a file lock, this host only (no lock for %s)", url.drivername)
    return FileLock(Path(tempfile.gettempdir()) / f"liandong-{digest}.scheduler.lock")
