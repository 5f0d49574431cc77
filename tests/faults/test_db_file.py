"""A real `liandong run` whose SQLite file goes away while it runs: deleted, or replaced by a
file that is no database, and later restored from a copy. Each is an outage: nothing
acknowledged meanwhile, no empty database created in its place, said once as ERROR, and
recovered without a restart once the file is back. Bounded: 60 messages each, well under 60 s."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from aiohttp.test_utils import TestServer

from bot.sandbox.emulator import Emulator
from models.tables import OutboxMessage
from tests.faults.test_db_faults import N, bot_for, burst, outage_outcome, ping_answered
from tests.faults.test_sigkill import numbers

OUTBOX = OutboxMessage.__table__.name  # type: ignore[attr-defined]


async def redelivered_twice_unanswered(emulator: Emulator, before: int) -> None:
    """Every frame after the first `before` has come at least twice and none was acked 200;
    a push notifies no waiter, so a ping (answered at once) is the tick."""
    deadline = time.monotonic() + 30
    while not (len(emulator.delivered) == N and sum(n >= 2 for n in emulator.delivered.values()) >= N - before):
        assert time.monotonic() < deadline
        await ping_answered(emulator, timeout=2.0)
    assert len(set(numbers(emulator))) == before


def pending(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {OUTBOX} WHERE status = 'pending'").fetchone()[0])


def acked_ok(emulator: Emulator) -> int:
    return sum(code == 200 for k, code in emulator.acks.items() if not k.startswith("ping-"))


async def outage_and_back(tmp_path: Path, emulator: Emulator, fault: str) -> None:
    emulator.faults.redeliver_after_s = 1.0  # frames not acked (not stored) come again
    bot = bot_for(tmp_path, emulator)
    await bot.migrate()
    await bot.start()
    db, away = tmp_path / "bot.db", tmp_path / "bot.db.away"
    try:
        await burst(emulator, 0, N // 3)
        await emulator.wait_for(lambda: len(set(numbers(emulator))) == N // 3, timeout=30)
        acked = acked_ok(emulator)
        # A consistent copy (the backup API) kept aside once every reply sent is recorded (a copy
        # older than that would rightly send it again), then the file is deleted or replaced.
        deadline = time.monotonic() + 30
        while pending(db):  # the bot's record notifies no waiter: a ping is the tick
            assert time.monotonic() < deadline
            await ping_answered(emulator, timeout=2.0)
        with sqlite3.connect(db) as src, sqlite3.connect(away) as dst:
            src.backup(dst)
        # The write-ahead log goes with the file it belongs to: left beside another file, SQLite
        # would replay the old one's pages into it (sqlite.org/howtocorrupt.html §2.4).
        for side in ("", "-wal", "-shm"):
            Path(f"{db}{side}").unlink(missing_ok=True)
        if fault == "corrupt":
            db.write_bytes(b"not a database " * 4096)
        try:
            await burst(emulator, N // 3, N - N // 3)
            await redelivered_twice_unanswered(emulator, N // 3)
            assert acked_ok(emulator) == acked  # nothing acknowledged while the file was gone
            if fault == "missing":
                assert not db.exists()  # no empty database made in its place
            else:
                assert db.read_bytes().startswith(b"not a database")
        finally:
            os.replace(away, db)
        back = time.monotonic()
        await emulator.wait_for(lambda: len(set(numbers(emulator))) == N, timeout=30)
        recovered_s = time.monotonic() - back
    finally:
        code = await bot.stop()
    assert code == 0
    text = outage_outcome(emulator, tmp_path, fault, recovered_s)
    assert "Traceback" not in text


async def test_a_database_file_deleted_while_running_is_an_outage_and_recovers_when_back(
    tmp_path: Path, emulator_server: tuple[Emulator, TestServer]
) -> None:
    await outage_and_back(tmp_path, emulator_server[0], "missing")


async def test_a_database_file_replaced_by_garbage_is_an_outage_and_recovers_when_restored(
    tmp_path: Path, emulator_server: tuple[Emulator, TestServer]
) -> None:
    await outage_and_back(tmp_path, emulator_server[0], "corrupt")
