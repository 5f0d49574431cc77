"""The cost of a Prometheus scrape and a health check on a database with history: seed N outbox
rows and N inbox rows (100,000 each by default: a year of a busy district), a year of job runs
and some pictures, then time GET /metrics and GET /healthz over HTTP on a loopback port, beside
the floor measured in the same run (`SELECT count(*) FROM outbox`, the cheapest full look at
the table). Prints the median of several warm runs of each.

    .venv/bin/python bench/metrics.py [--rows 100000] [--runs 20] [--db sqlite|postgres|URL]

`--db postgres` makes a database of its own on LIANDONG_TEST_POSTGRES (default the local
server), analyses it after seeding (as autovacuum would), and drops it at the end."""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import Engine, insert, text

from bot.app import build
from bot.config import Settings
from bot.web import create_web_app
from models.clock import FrozenClock
from models.tables import InboxMessage, Issue, JobRun, OutboxMessage, PhotoDownload
from schedules.jobs import JOB_NAMES

NOW = datetime(2020, 12, 30, 9, 0, tzinfo=UTC)
CHUNK = 5000
SERVER = os.environ.get("LIANDONG_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for r in rows:
        batch.append(r)
        if len(batch) == CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def _inbox(n: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    for i in range(n):
        pending = i >= n - 3  # a few just received
        at = NOW - timedelta(seconds=(n - i) * (1 if pending else 300))
        roll = rng.random()
        outcome = None if pending else "ok" if roll < 0.9 else "refused" if roll < 0.995 else "error"
        yield {
            "msg_id": f"bench-{i}",
            "conversation_id": "cid-shangyang",
            "sender_id": "v001",
            "payload": {},
            "received_at": at,
            "status": "pending" if pending else "done",
            "outcome": outcome,
            "reason": "KeyError" if outcome == "error" else "未登记" if outcome == "refused" else None,
            "processed_at": None if pending else at,
            "claimed_until": None,
        }


def _outbox(n: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    for i in range(n):
        roll = rng.random()
        status = "pending" if i >= n - 20 else "failed" if roll < 0.005 else "sent"  # the last few: just written
        at = NOW - timedelta(seconds=(n - i) * (2 if status == "pending" else 300))
        kind = "reply" if roll < 0.7 else "group" if roll < 0.9 else "user"
        yield {
            "key": f"bench:{i}",
            "kind": kind,
            "conversation_id": "cid-shangyang",
            "user_ids": [],
            "at_user_ids": [],
            "title": "两难助手",
            "text": "已登记 #1",
            "status": status,
            "attempts": 1,
            "last_error": rng.choice(("HTTP 400 invalidParameter", "errcode 310000")) if status == "failed" else None,
            "created_at": at,
            "sent_at": at if status == "sent" else None,
            "channel": ("session" if kind == "reply" else "openapi") if status == "sent" else None,
            "next_attempt_at": at + timedelta(seconds=30) if status == "pending" and i % 2 else None,
        }


def _jobs() -> Iterator[dict[str, Any]]:
    """A year of runs before the last fortnight (the scheduler's catch-up records that)."""
    for day in range(15, 380):
        due = NOW - timedelta(days=day)
        for job in JOB_NAMES:
            yield {
                "job": job,
                "due_at": due,
                "trigger": "schedule",
                "status": "done",
                "messages": 3,
                "runner": "bench:1",
                "started_at": due,
                "finished_at": due,
            }


def _photos(n: int) -> Iterator[dict[str, Any]]:
    for i in range(n):
        yield {
            "issue_id": 1,
            "event_seq": 1,
            "msg_id": f"bench-photo-{i}",
            "code": f"code-{i}",
            "status": "stored" if i % 50 else "lost",
            "last_error": None if i % 50 else "too large: 30000000",
            "created_at": NOW - timedelta(hours=i),
        }


def seed(engine: Engine, rows: int) -> None:
    rng = random.Random(11)
    with engine.begin() as conn:
        for table, source in (
            (InboxMessage.__table__, _inbox(rows, rng)),  # type: ignore[attr-defined]
            (OutboxMessage.__table__, _outbox(rows, rng)),  # type: ignore[attr-defined]
            (JobRun.__table__, _jobs()),  # type: ignore[attr-defined]
        ):
            for batch in _chunks(source):
                conn.execute(insert(table), batch)
        # One issue for the pictures to belong to (a picture's row names its issue).
        unit = conn.execute(text("SELECT unit_id FROM people WHERE id = 'v001'")).scalar_one()
        conn.execute(
            insert(Issue.__table__),  # type: ignore[attr-defined]
            {"id": 1, "unit_id": unit, "reporter_id": "v001", "created_at": NOW, "updated_at": NOW}
            | {"source_msg_id": "bench-0", "phones": []},
        )
        for batch in _chunks(_photos(rows // 100)):
            conn.execute(insert(PhotoDownload.__table__), batch)  # type: ignore[attr-defined]


async def median_s(client: TestClient, path: str, runs: int) -> tuple[float, float, int]:
    """The first request's time (a new process: /metrics counts the big tables whole once),
    the median of the warm ones after it, and the status."""
    times: list[float] = []
    status = 0
    for _ in range(runs + 2):
        started = time.perf_counter()
        r = await client.get(path)
        body = await r.text()
        # A scrape that could not read the database is quick and worthless: never report one.
        assert path != "/metrics" or 'liandong_database_up{error=""} 1.0' in body, body[-400:]
        times.append(time.perf_counter() - started)
        status = r.status
    return times[0], statistics.median(times[2:]), status


def floor_s(engine: Engine, runs: int) -> float:
    times: list[float] = []
    with engine.connect() as conn:
        for _ in range(runs + 2):
            started = time.perf_counter()
            conn.execute(text("SELECT count(*) FROM outbox")).scalar()
            times.append(time.perf_counter() - started)
    return statistics.median(times[2:])


@contextmanager
def database(db: str, folder: Path) -> Iterator[str]:
    if db == "sqlite":
        yield f"sqlite:///{folder}/bench.db"
        return
    if db != "postgres":
        yield db
        return
    import psycopg

    name = f"liandong_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield SERVER.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + f"/{name}"
    finally:
        with psycopg.connect(SERVER, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def measure(url: str, folder: Path, rows: int, runs: int) -> None:
    clock = FrozenClock(NOW)
    app = build(Settings(database_url=url, photos_dir=folder / "photos"), clock)
    started = time.perf_counter()
    seed(app.engine, rows)
    app.job_runner(clock).catch_up()  # the last fortnight, as a leader's start records it
    if app.engine.dialect.name == "postgresql":
        with app.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    took = time.perf_counter() - started
    print(f"seeded {rows:,} inbox + {rows:,} outbox rows, a year of job runs, {rows // 100:,} pictures in {took:.1f} s")
    measures: list[tuple[str, Callable[[TestClient], Awaitable[tuple[float, float, int]]]]] = [
        ("GET /metrics", lambda c: median_s(c, "/metrics", runs)),
        ("GET /healthz", lambda c: median_s(c, "/healthz", runs)),
    ]
    floor = floor_s(app.engine, runs)
    print(f"\n{app.engine.dialect.name}: median of {runs} warm runs")
    print(f"{'request':<16} {'status':>6} {'first':>10} {'median':>10} {'× floor':>9}")
    async with TestClient(TestServer(create_web_app(app, clock), host="127.0.0.1")) as client:
        for name, run in measures:
            first, median, status = await run(client)
            print(f"{name:<16} {status:>6} {first * 1000:>8.1f}ms {median * 1000:>8.1f}ms {median / floor:>8.1f}×")
    print(f"{'floor: count(*)':<16} {'':>6} {'':>10} {floor * 1000:>8.1f}ms")
    app.engine.dispose()


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000, help="outbox rows, and as many inbox rows")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--db", default="sqlite", help="sqlite | postgres | a database URL (an empty database)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, database(args.db, Path(tmp)) as url:
        asyncio.run(measure(url, Path(tmp), args.rows, args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
