"""One slow session webhook must not slow the other conversations: replies/s through the
outbox sender's running loop (start → all sent), with a share of the session-webhook posts
answered late, against the local DingTalk emulator on loopback.

    .venv/bin/python -m bench.slow_webhooks [--n 600] [--conversations 20] [--slow-share 0.05]
        [--slow-s 2] [--repeat 3]

Prints, median of the repeats: all replies/s, and the seconds until the last reply of the
conversations that never met a slow post had arrived (what a slow group costs the others).
The slowness is the client's wait for DingTalk's answer, so it is injected in the API client
(seeded), not in the emulator."""

from __future__ import annotations

import argparse
import asyncio
import random
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
from bot.transport.sender import OutboxSender
from models import outbox
from models.clock import SystemClock
from models.db import unit_of_work

T = TypeVar("T")


class SlowSometimes(DingTalkApi):
    """A session webhook whose answer is late for a seeded share of the posts."""

    def __init__(self, *args: Any, share: float, slow_s: float, seed: int, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.rng, self.share, self.slow_s = random.Random(seed), share, slow_s
        self.slowed: set[str] = set()  # webhooks that met a slow post

    async def session_send(self, webhook: str, body: dict[str, Any]) -> None:
        if self.rng.random() < self.share:
            self.slowed.add(webhook)
            await asyncio.sleep(self.slow_s)  # the fault: DingTalk answers this post late
        await super().session_send(webhook, body)


async def one_run(args: argparse.Namespace, url: str, emulator: Emulator, seed: int) -> tuple[float, float]:
    settings = settings_for(url, emulator)
    app = build(settings)
    now = datetime.now(UTC)
    hooks = {c: emulator.open_session(f"cid-slow{c}") for c in range(args.conversations)}
    rows = [
        outbox.row(
            f"reply:slow{i}",
            "reply",
            title="两难助手",
            text=f"第{i}号 收到",
            created_at=now,
            conversation_id=f"cid-slow{i % args.conversations}",
            session_webhook=hooks[i % args.conversations],
            webhook_expires_at=now + timedelta(hours=1),
        )
        for i in range(args.n)
    ]
    with unit_of_work(app.engine) as session:
        outbox.write(session, rows)
    db = ThreadPoolExecutor(1, thread_name_prefix="bench-db")

    async def run_db(fn: Callable[..., T], *a: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(db, fn, *a)

    async with aiohttp.ClientSession() as http:
        creds = Credentials(emulator.client_id, emulator.client_secret, ROBOT_CODE)
        api = SlowSometimes(http, emulator.base_url, creds, share=args.slow_share, slow_s=args.slow_s, seed=seed)
        sender = OutboxSender(app.engine, api, run_db, SystemClock())
        before = len(emulator.sent)
        start = time.perf_counter()
        sender.start()
        await emulator.wait_for(lambda: len(emulator.sent) - before >= args.n, timeout=600)
        elapsed = time.perf_counter() - start
        await sender.stop()
        fast = [s for s in emulator.sent[before:] if s.webhook not in api.slowed]
        fast_done = max(s.at for s in fast) - (time.time() - (time.perf_counter() - start)) if fast else 0.0
    db.shutdown()
    app.engine.dispose()
    return args.n / elapsed, fast_done


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--conversations", type=int, default=20)
    parser.add_argument("--slow-share", type=float, default=0.05)
    parser.add_argument("--slow-s", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    emulator, runner = await serve_emulator()
    tmp = Path(tempfile.mkdtemp(prefix="liandong-bench-slow-"))
    results = [await one_run(args, f"sqlite:///{tmp}/s{k}.db", emulator, seed=k) for k in range(args.repeat)]
    rate = statistics.median(r[0] for r in results)
    fast = statistics.median(r[1] for r in results)
    print(
        f"N={args.n} replies over {args.conversations} conversations, {args.slow_share:.0%} of posts "
        f"{args.slow_s:g} s late, median of {args.repeat}: {rate:.0f} replies/s; "
        f"the conversations never slowed all answered within {fast:.1f} s"
    )
    emulator.close()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
