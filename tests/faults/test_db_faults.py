"""A real `liandong run` against the emulator while its SQLite database misbehaves: locked by
another writer well past the busy timeout, and read-only from the start until it is made
writable again. Each run: nothing lost, nothing doubled, recovered without a restart, pings
answered while the database is locked, and the outage said once in the log, not per message.
Bounded: 60 messages each, a 1 s busy timeout (through DATABASE_URL's `?timeout=`), well under
60 s."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import subprocess
import time
from pathlib import Path

from aiohttp.test_utils import TestServer

from bot.sandbox.emulator import Emulator
from tests.faults.test_sigkill import Bot, numbers

N = 60
BUSY_S = 1  # the bot's SQLite busy timeout in these runs
LOCK_S = 6.0  # the fault: another writer holds the lock six busy timeouts long


def bot_for(tmp_path: Path, emulator: Emulator) -> Bot:
    bot = Bot(tmp_path, emulator)
    bot.env["DATABASE_URL"] = f"sqlite:///{tmp_path}/bot.db?timeout={BUSY_S}"
    return bot


async def burst(emulator: Emulator, first: int, count: int) -> None:
    for i in range(first, first + count):
        await emulator.deliver(emulator.user_message("cid-shangyang", "v001", "张三", f"上报 上洋村第{i}号井盖缺失"))


def log_of(tmp_path: Path) -> str:
    return (tmp_path / "bot.log").read_text(encoding="utf-8", errors="replace")


async def ping_answered(emulator: Emulator, timeout: float) -> float:
    """Send a ping frame; seconds until its ack came back."""
    before = {k for k in emulator.acks if k.startswith("ping-")}
    started = time.monotonic()
    await emulator.ping_all()
    await emulator.wait_for(lambda: any(k.startswith("ping-") and k not in before for k in emulator.acks), timeout)
    return time.monotonic() - started


def set_read_only(db: Path, mode: int, read_only: bool) -> None:
    """The file made read-only for the bot, or writable again. chmod binds no root process, so
    as root the file is marked immutable instead (chattr +i), which binds root too."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i" if read_only else "-i", str(db)], check=True)
    else:
        db.chmod(stat.S_IRUSR | stat.S_IRGRP if read_only else mode)


def tally(emulator: Emulator) -> tuple[int, int]:
    got = numbers(emulator)
    return N - len(set(got)), len(got) - len(set(got))


def outage_outcome(emulator: Emulator, tmp_path: Path, state: str, recovered_s: float) -> str:
    """A database outage's run, printed as a row of tests/faults/README.md and held to its
    promise: nothing lost or doubled, the outage and its end each said once. The bot's log."""
    lost, doubled = tally(emulator)
    text = log_of(tmp_path)
    redelivered = sum(emulator.delivered.values()) - N
    print(
        f"\ndb {state}: messages={N} redeliveries={redelivered} lost={lost} doubled={doubled} "
        f"recovered_in={recovered_s:.1f}s errors={text.count('ERROR')} tracebacks={text.count('Traceback')} "
        "restarts=0"
    )
    assert (lost, doubled) == (0, 0)
    assert text.count(f"database {state}") == 1  # once per state change, not per message
    assert text.count("database writable again") == 1
    return text


async def test_a_lock_past_the_busy_timeout_strands_nothing_and_pings_are_answered(
    tmp_path: Path, emulator_server: tuple[Emulator, TestServer]
) -> None:
    emulator, _server = emulator_server
    emulator.faults.redeliver_after_s = 1.0  # frames not acked (not stored) come again
    bot = bot_for(tmp_path, emulator)
    await bot.migrate()
    await bot.start()
    try:
        await burst(emulator, 0, N // 3)
        await emulator.wait_for(lambda: len(set(numbers(emulator))) == N // 3, timeout=30)
        holder = sqlite3.connect(tmp_path / "bot.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another writer takes SQLite's one write lock
        locked_at = time.monotonic()
        try:
            await burst(emulator, N // 3, N - N // 3)  # arrive while the database is locked
            ping_s = await ping_answered(emulator, timeout=2.0)
            # The fault's length, not a wait for the bot: the lock is held this long whatever it does.
            await asyncio.sleep(max(0.0, LOCK_S - (time.monotonic() - locked_at)))
            assert len(set(numbers(emulator))) == N // 3  # nothing could be stored or answered meanwhile
            ping_late_s = await ping_answered(emulator, timeout=2.0)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        released = time.monotonic()
        await emulator.wait_for(lambda: len(set(numbers(emulator))) == N, timeout=30)
        recovered_s = time.monotonic() - released
    finally:
        code = await bot.stop()
    lost, doubled = tally(emulator)
    text = log_of(tmp_path)
    print(
        f"\ndb locked: messages={N} lock={LOCK_S}s busy_timeout={BUSY_S}s lost={lost} doubled={doubled} "
        f"recovered_in={recovered_s:.1f}s ping_during_lock={ping_s * 1000:.0f}ms/{ping_late_s * 1000:.0f}ms "
        f"errors={text.count('ERROR')} tracebacks={text.count('Traceback')} restarts=0"
    )
    assert code == 0
    assert (lost, doubled) == (0, 0)
    assert text.count("database locked") == 1  # once per state change, not per message
    assert text.count("database writable again") == 1
    assert "Traceback" not in text


async def test_a_read_only_database_is_said_once_and_recovers_when_writable(
    tmp_path: Path, emulator_server: tuple[Emulator, TestServer]
) -> None:
    emulator, _server = emulator_server
    emulator.faults.redeliver_after_s = 1.0
    bot = bot_for(tmp_path, emulator)
    await bot.migrate()
    db = tmp_path / "bot.db"
    writable = db.stat().st_mode
    set_read_only(db, writable, True)  # read-only before the bot starts
    try:
        await bot.start()
        await burst(emulator, 0, N)
        # Each frame comes again while the database refuses it, until every one has been tried
        # twice. A push notifies no waiter, so a ping (answered at once, as asserted) is the tick.
        deadline = time.monotonic() + 30
        while not (len(emulator.delivered) == N and min(emulator.delivered.values()) >= 2):
            assert time.monotonic() < deadline
            await ping_answered(emulator, timeout=2.0)
        assert numbers(emulator) == []
        assert not any(code == 200 for k, code in emulator.acks.items() if not k.startswith("ping-"))
    finally:
        set_read_only(db, writable, False)
    fixed = time.monotonic()
    try:
        await emulator.wait_for(lambda: len(set(numbers(emulator))) == N, timeout=30)
        recovered_s = time.monotonic() - fixed
    finally:
        code = await bot.stop()
    assert code == 0
    text = outage_outcome(emulator, tmp_path, "read-only", recovered_s)
    # The scheduler's catch-up at start records each missed job and says so with a traceback
    # (schedules/, not the message path); the message path logs none.
    assert text.count("Traceback") == 2 * text.count("INSERT INTO job_runs")
    assert os.access(db, os.W_OK)
