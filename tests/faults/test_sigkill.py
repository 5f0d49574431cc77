"""A real `liandong run` process, killed with SIGKILL at random points of a burst and started
again each time, against the emulator: nothing lost, and nothing doubled beyond the one send
that was under way at each kill (a session webhook has no idempotency key). Seeded, bounded:
300 messages, 4 kills, well under 90 s."""

from __future__ import annotations

import asyncio
import os
import random
import re
import sys
import time
from pathlib import Path

from aiohttp.test_utils import TestServer

from bot.sandbox.emulator import Emulator

N = 300
KILLS = 4
SEED = 20260
CLAIM_S = "2"  # a dead process's messages and replies are taken up 2 s after its last renewal
NUMBER = re.compile(r"第(\d+)号")


class Bot:
    """One `liandong run` at a time on the same database, against the emulator."""

    def __init__(self, tmp_path: Path, emulator: Emulator) -> None:
        self.tmp_path = tmp_path
        self.emulator = emulator
        self.env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{tmp_path}/bot.db",
            "DINGTALK_CLIENT_ID": "sandbox-id",
            "DINGTALK_CLIENT_SECRET": "sandbox-secret",
            "DINGTALK_ROBOT_CODE": "dingsandboxrobot",
            "DINGTALK_OPENAPI_ENDPOINT": emulator.base_url,
        }
        self.proc: asyncio.subprocess.Process | None = None

    async def migrate(self) -> None:
        cmd = (sys.executable, "-m", "bot.cli", "migrate")
        migrate = await asyncio.create_subprocess_exec(*cmd, env=self.env, stdout=asyncio.subprocess.DEVNULL)
        assert await asyncio.wait_for(migrate.wait(), 60) == 0

    async def start(self) -> None:
        with open(self.tmp_path / "bot.log", "ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "bot.cli", "run", "--no-web", "--claim-s", CLAIM_S),
                env=self.env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log,
            )
        await self.emulator.wait_for(lambda: len(self.emulator.connections) == 1, timeout=30)

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL: no clean stop, nothing flushed
        await self.proc.wait()
        await self.emulator.wait_for(lambda: not self.emulator.connections, timeout=30)

    async def stop(self) -> int:
        assert self.proc is not None
        self.proc.terminate()
        return await asyncio.wait_for(self.proc.wait(), 30)


def numbers(emulator: Emulator) -> list[int]:
    found = (NUMBER.search(s.text) for s in emulator.sent)
    return [int(m.group(1)) for m in found if m]


async def test_sigkill_at_random_points_of_a_burst_loses_nothing_and_doubles_at_most_one_per_kill(
    tmp_path: Path, emulator_server: tuple[Emulator, TestServer]
) -> None:
    emulator, _server = emulator_server
    emulator.faults.redeliver_after_s = 1.0  # frames a dead process never acked come back
    bot = Bot(tmp_path, emulator)
    await bot.migrate()
    await bot.start()
    rng = random.Random(SEED)
    kill_at = sorted(rng.sample(range(10, N - 10), KILLS))  # after this many replies arrived

    async def burst() -> None:
        for i in range(N):
            text = f"上报 上洋村第{i}号井盖缺失"
            await emulator.deliver(emulator.user_message("cid-shangyang", "v001", "张三", text))

    started = time.monotonic()
    sending = asyncio.create_task(burst())
    try:
        for threshold in kill_at:
            await emulator.wait_for(lambda t=threshold: len(emulator.sent) >= t, timeout=60)  # type: ignore[misc]
            await bot.kill()
            await bot.start()
        await sending
        restarted = time.monotonic()
        await emulator.wait_for(lambda: len(set(numbers(emulator))) == N, timeout=60)
        recovered_s = time.monotonic() - restarted
    finally:
        if not sending.done():
            sending.cancel()
        code = await bot.stop()
    got = numbers(emulator)
    lost = N - len(set(got))
    doubled = len(got) - len(set(got))
    print(
        f"\nsigkill: messages={N} kills={KILLS} at={kill_at} lost={lost} doubled={doubled} "
        f"recovered_in={recovered_s:.1f}s total={time.monotonic() - started:.1f}s"
    )
    assert code == 0
    assert lost == 0
    assert doubled <= KILLS  # only the send under way at each kill may have gone out twice
    assert set(got) == set(range(N))
