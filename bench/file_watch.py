"""What the database file watch (models.db: the path's device and inode compared at every
checkout and commit) costs a unit of work on SQLite: N one-row units of work with and without
it, medians of R rounds, microseconds per unit of work.

    .venv/bin/python -m bench.file_watch [N] [R]"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

from sqlalchemy import text

from models import db


def run(path: Path, n: int, watched: bool) -> float:
    with mock.patch.object(db, "_watch_file", db._watch_file if watched else lambda engine, path: None):
        engine = db.make_engine(f"sqlite:///{path}", db.Access.WRITE)
    started = time.perf_counter()
    for i in range(n):
        with db.unit_of_work(engine) as session:
            session.execute(text("INSERT INTO t VALUES (:i)"), {"i": i})
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed / n * 1e6


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        prepared = db.make_engine(f"sqlite:///{path}")
        with prepared.begin() as conn:
            conn.execute(text("CREATE TABLE t (a INTEGER)"))
        prepared.dispose()
        results: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(rounds):
            for watched in (False, True):
                results[watched].append(run(path, n, watched))
    off, on = statistics.median(results[False]), statistics.median(results[True])
    print(f"units of work={n} rounds={rounds}: unwatched {off:.1f} µs, watched {on:.1f} µs, +{on - off:.1f} µs")


if __name__ == "__main__":
    main()
