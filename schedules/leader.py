"""Only one process runs the jobs: the leader, holder of a lock that the operating system (or
the database) releases when the process dies, so another process can take over.

For SQLite the lock is an flock on a file beside the database. The PostgreSQL issue adds an
advisory-lock class with the same two methods and a branch in `leader_lock`."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import make_url

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


def leader_lock(database_url: str) -> LeaderLock:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return FileLock(Path(url.database).resolve().with_name(Path(url.database).name + ".scheduler.lock"))
    # Until the advisory lock exists this only excludes processes on the same host.
    digest = hashlib.sha256(url.render_as_string(hide_password=True).encode()).hexdigest()[:16]
    if url.get_backend_name() != "sqlite":
        log.warning("scheduler leader lock: a file lock, this host only (no lock for %s yet)", url.drivername)
    return FileLock(Path(tempfile.gettempdir()) / f"liandong-{digest}.scheduler.lock")
