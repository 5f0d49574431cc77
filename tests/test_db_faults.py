"""The database misbehaving, seen from inside one process: no statement ever runs on the event
loop's thread (so the stream reader keeps reading and pings are answered whatever the database
does), and an outage is said once per state change, classified by what a retry can cure."""

from __future__ import annotations

import logging
import sqlite3
import threading
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError, OperationalError

from bot.transport.db_state import DatabaseState
from models.db import busy_timeout_s, outage
from tests.dingtalk import Rig


async def test_no_database_statement_runs_on_the_event_loop_thread(rig: Rig) -> None:
    loop_thread = threading.get_ident()
    on_loop: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if threading.get_ident() == loop_thread:
            on_loop.append(statement[:60])

    event.listen(rig.app.engine, "before_cursor_execute", seen)
    try:
        emulator = rig.emulator
        for i in range(20):
            text = f"上报 上洋村第{i}号井盖缺失"
            await emulator.deliver(emulator.user_message("cid-shangyang", "v001", "张三", text))
        await emulator.deliver(emulator.user_message("cid-shangyang", "v001", "张三", "统计"))
        await emulator.wait_for(lambda: len(emulator.sent) >= 21, timeout=30)
        await emulator.ping_all()
        await emulator.wait_for(lambda: any(k.startswith("ping-") for k in emulator.acks), timeout=5)
    finally:
        event.remove(rig.app.engine, "before_cursor_execute", seen)
    assert on_loop == []


async def test_a_ping_is_answered_while_a_store_waits_for_the_write_lock(rig: Rig) -> None:
    """Another writer holds the lock (shorter than the busy timeout): the frame's store waits on
    the database thread, and the ping that follows it is answered at once."""
    if rig.app.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's one write lock, taken from another connection")
    path = rig.app.engine.url.database
    assert path
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        msg_id = await rig.emulator.deliver(rig.emulator.user_message("cid-shangyang", "v001", "张三", "上报 井盖缺失"))
        await rig.emulator.ping_all()
        await rig.emulator.wait_for(lambda: any(k.startswith("ping-") for k in rig.emulator.acks), timeout=5)
        assert msg_id not in rig.emulator.acks  # not acknowledged: it is not stored yet
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    await rig.emulator.wait_for(lambda: bool(rig.emulator.sent), timeout=30)


def locked() -> OperationalError:
    return OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))


def test_outages_are_told_apart_from_a_message_s_own_error() -> None:
    assert outage(locked()) == "locked"
    readonly = sqlite3.OperationalError("attempt to write a readonly database")
    assert outage(OperationalError("INSERT", {}, readonly)) == "read-only"
    # mode=rw on a file that is not there (models/db.py opens SQLite so, never creating it)
    assert outage(OperationalError("connect", {}, sqlite3.OperationalError("unable to open database file"))) == (
        "missing"
    )
    assert outage(IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed"))) is None
    assert outage(ValueError("bad")) is None


def test_an_outage_is_said_once_per_state_change(caplog: pytest.LogCaptureFixture) -> None:
    state = DatabaseState()
    with caplog.at_level(logging.INFO, logger="bot.transport.db_state"):
        for _ in range(100):
            assert state.failed(locked())
        assert state.state == "locked" and not state.ok
        state.succeeded()
        state.succeeded()
        assert not state.failed(ValueError("a handler's bug"))
    assert [r.levelname for r in caplog.records] == ["ERROR", "WARNING"]
    assert "100 writes retried" in caplog.records[1].getMessage()
    assert state.ok and state.outages == 1


def test_the_busy_timeout_comes_from_the_database_url() -> None:
    assert busy_timeout_s("sqlite:///x.db") == 30.0
    assert busy_timeout_s("sqlite:///x.db?timeout=1.5") == 1.5


async def test_a_message_whose_processing_the_database_failed_is_retried_before_its_claim_lapses(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stored, then the database fails its processing twice (locked): this process, which
    still holds the claim (60 s), tries it again with backoff; the sweep would take 60 s."""
    assert rig.runtime.pipeline is not None
    dispatcher = rig.runtime.pipeline.dispatcher
    real = dispatcher.process_writes
    failures = [locked(), locked()]

    def flaky(msg_ids: list[str]) -> Any:
        if failures:
            raise failures.pop()
        return real(msg_ids)

    monkeypatch.setattr(dispatcher, "process_writes", flaky)
    await rig.emulator.deliver(rig.emulator.user_message("cid-shangyang", "v001", "张三", "上报 井盖缺失"))
    await rig.emulator.wait_for(lambda: bool(rig.emulator.sent), timeout=10)  # well inside the 60 s claim
    assert failures == [] and len(rig.emulator.sent) == 1
    assert rig.runtime.pipeline.database.ok
