"""The outbox sender's throughput, with its outcomes recorded the old way (once, at the end of
each pass of up to CLAIM_LIMIT rows: a crash resends the whole pass) and the new way (each
outcome committed before its conversation's next send; concurrent outcomes share a commit),
in the same run, against the local DingTalk emulator on loopback.

    .venv/bin/python -m bench.sending [--n 2000] [--conversations 1,8] [--repeat 3] [--postgres]

Prints sends/s (median of the repeats) and the ratio new/old for each number of conversations.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from bench.emulated import serve_emulator, settings_for
from bot.app import build
from bot.sandbox.emulator import ROBOT_CODE, Emulator
from bot.transport.dingtalk_api import Credentials, DingTalkApi
from bot.transport.sender import OutboxSender, Outcome
from models import outbox
from models.clock import SystemClock
from models.db import unit_of_work

T = TypeVar("T")


class BatchRecordingSender(OutboxSender):
    """The sender as it was: outcomes kept in memory and recorded in one transaction at the end
    of the pass."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._kept: list[Outcome] = []

    async def _commit(self, outcomes: list[Outcome]) -> None:
        self._kept.extend(outcomes)

    async def _pass(self) -> tuple[int, bool]:
        result = await super()._pass()
        kept, self._kept = self._kept, []
        if kept:
            await self.run_db(self._record, kept)
        return result


async def one_run(kind: type[OutboxSender], n: int, conversations: int, url: str, emulator: Emulator) -> float:
    settings = settings_for(url, emulator)
    app = build(settings)
    now = datetime.now(UTC)
    rows = [
        outbox.row(
            f"reply:bench{i}",
            "reply",
            title="两难助手",
            text=f"第{i}号 收到",
            created_at=now,
            conversation_id=f"cid-bench{i % conversations}",
            session_webhook=emulator.open_session(f"cid-bench{i % conversations}"),
            webhook_expires_at=now + timedelta(hours=1),
        )
        for i in range(n)
    ]
    with unit_of_work(app.engine) as session:
        outbox.write(session, rows)
    db = ThreadPoolExecutor(1, thread_name_prefix="bench-db")

    async def run_db(fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(db, fn, *args)

    async with aiohttp.ClientSession() as http:
        api = DingTalkApi(http, emulator.base_url, Credentials(emulator.client_id, emulator.client_secret, ROBOT_CODE))
        sender = kind(app.engine, api, run_db, SystemClock())
        before = len(emulator.sent)
        start = time.perf_counter()
        await sender.flush()
        elapsed = time.perf_counter() - start
        assert len(emulator.sent) - before == n, "every row sent once"
    db.shutdown()
    app.engine.dispose()
    return n / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--conversations", default="1,8")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres", action="store_true", help="also on the local PostgreSQL (a fresh database)")
    args = parser.parse_args()
    emulator, runner = await serve_emulator()
    tmp = Path(tempfile.mkdtemp(prefix="liandong-bench-sending-"))
    stack = contextlib.ExitStack()
    databases: list[tuple[str, Callable[[int], str]]] = [("sqlite", lambda k: f"sqlite:///{tmp}/s{k}.db")]
    if args.postgres:
        from tests.postgres import fresh_database  # the suite's helper: databases of our own, dropped after

        databases.append(("postgres", lambda k: stack.enter_context(fresh_database())))
    print(f"N={args.n} replies per run, median of {args.repeat}; sends/s through the session webhook")
    print(f"{'db':<10}{'convs':>6}{'old: per pass':>15}{'new: per send':>15}{'new/old':>9}")
    k = 0
    for name, url in databases:
        for conversations in (int(c) for c in args.conversations.split(",")):
            results: dict[str, list[float]] = {"old": [], "new": []}
            for _ in range(args.repeat):  # interleaved, so that load on the machine hits both alike
                for label, kind in (("old", BatchRecordingSender), ("new", OutboxSender)):
                    k += 1
                    results[label].append(await one_run(kind, args.n, conversations, url(k), emulator))
            old, new = statistics.median(results["old"]), statistics.median(results["new"])
            print(f"{name:<10}{conversations:>6}{old:>15.0f}{new:>15.0f}{new / old:>9.2f}")
    stack.close()
    emulator.close()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
