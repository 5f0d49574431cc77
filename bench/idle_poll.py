"""What the sender's idle poll (every IDLE_POLL_S) costs: one claim pass that finds nothing plus
the next-due query, on an outbox of N sent rows. Prints medians in milliseconds.

    .venv/bin/python bench/idle_poll.py [N] [DATABASE_URL]"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime

from sqlalchemy import insert

from bot.transport.sender import IDLE_POLL_S, OutboxSender
from models.clock import FrozenClock
from models.db import make_engine, migrate
from models.outbox import OUTBOX, row


async def _in_place(fn, *args):  # type: ignore[no-untyped-def]
    return fn(*args)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    url = sys.argv[2] if len(sys.argv) > 2 else f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    engine = make_engine(url)
    migrate(engine)
    now = datetime(2020, 3, 2, tzinfo=UTC)
    with engine.begin() as conn:
        for start in range(0, n, 5000):
            rows = [
                {**row(f"k{i}", "group", title="t", text="x", created_at=now, conversation_id="c"), "status": "sent"}
                for i in range(start, min(n, start + 5000))
            ]
            conn.execute(insert(OUTBOX), rows)
    sender = OutboxSender(engine, None, _in_place, FrozenClock(now))  # type: ignore[arg-type]
    times = []
    for _ in range(200):
        t = time.perf_counter()
        asyncio.run(sender.run_pass())
        sender._next_due_in()
        times.append((time.perf_counter() - t) * 1000)
    median = statistics.median(times)
    print(f"{n} sent rows, {engine.dialect.name}: idle poll median {median:.2f} ms")
    print(f"every {IDLE_POLL_S:g} s: {median / (IDLE_POLL_S * 1000) * 100:.3f} % of one core")


if __name__ == "__main__":
    main()
