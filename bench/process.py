"""In-process cost of the hot path, without a transport: milliseconds per message to receive
(group-committed inbox write), to process (Dispatcher.process_many, in batches as the pipeline
takes them in a burst, or one by one with --batch 1, as in a paced trickle) and for the
sender's database side (claim + record the outcome). Median of runs.

    .venv/bin/python bench/process.py [--n 1000] [--runs 5] [--warm 300] [--batch 64]
        [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

With --postgres, each run uses a throwaway database on that server (created and dropped)
instead of a SQLite file."""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root

from bot.app import build
from bot.config import Settings
from bot.transport.pipeline import BATCH
from bot.transport.sender import OutboxSender, Outcome
from handlers.incoming import Incoming
from models.clock import SystemClock


def message(i: int) -> Incoming:
    return Incoming(
        msg_id=f"m{i}",
        conversation_id="cid-shangyang",
        sender_staff_id="v001",
        sender_nick="张三",
        text=f"上报 第{i}号 上洋村道路塌方,影响通行",
        create_at=datetime.now(UTC),
    )


@contextmanager
def database(server: str | None) -> Iterator[str]:
    if server is None:
        yield f"sqlite:///{Path(tempfile.mkdtemp(prefix='liandong-process-'))}/p.db"
        return
    import psycopg

    name = f"liandong_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + f"/{name}"
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def one_run(n: int, warm: int, batch: int = BATCH, server: str | None = None) -> tuple[float, float, float]:
    with database(server) as url:
        return _timed(url, n, warm, batch)


def _timed(url: str, n: int, warm: int, batch: int) -> tuple[float, float, float]:
    app = build(Settings(database_url=url))
    d = app.dispatcher
    sender = OutboxSender(app.engine, None, None, SystemClock())  # type: ignore[arg-type]
    for i in range(warm):  # a village with recent issues, as near-duplicates see it in use
        d.dispatch(message(i))
    sender._record([Outcome(x.id, "sent", "session", at=datetime.now(UTC)) for x in sender._claim()])
    msgs = [message(i) for i in range(warm, warm + n)]
    batches = [msgs[i : i + batch] for i in range(0, n, batch)]
    t0 = time.perf_counter()
    for b in batches:
        d.receive_many(b)
    t1 = time.perf_counter()
    for b in batches:
        d.process_many([m.msg_id for m in b])
    t2 = time.perf_counter()
    while claimed := sender._claim():
        sender._record([Outcome(x.id, "sent", "session", at=datetime.now(UTC)) for x in claimed])
    t3 = time.perf_counter()
    app.engine.dispose()
    return (t1 - t0) / n * 1000, (t2 - t1) / n * 1000, (t3 - t2) / n * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warm", type=int, default=300)
    parser.add_argument("--batch", type=int, default=BATCH, help="messages per transaction (1: a paced trickle)")
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL server (libpq URL) instead of SQLite")
    args = parser.parse_args()
    runs = [one_run(args.n, args.warm, args.batch, args.postgres) for _ in range(args.runs)]
    for name, values in zip(("receive", "process", "send (db)"), zip(*runs, strict=True), strict=True):
        print(f"{name:<10} {statistics.median(values):6.3f} ms/msg   (runs: {', '.join(f'{v:.3f}' for v in values)})")


if __name__ == "__main__":
    main()
