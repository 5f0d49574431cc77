"""No report or job stalls the chat: while a `统计` or the weekly digest is held inside its count
(a hook that blocks until the test releases it) over a database of a few thousand cases,
messages arriving meanwhile are acknowledged, stored and answered; then the held one finishes.
Everything is seen from DingTalk's side (the emulator): acks and replies."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bench.counts import seed
from bot.dispatch import Outcome, Prepared
from handlers import info_commands
from handlers.incoming import Incoming
from models.clock import SHANGHAI, FrozenClock
from models.db import read_session, unit_of_work
from schedules import due
from schedules.runs import RunResult
from tests.conftest import BOT_ID, Chat
from tests.dingtalk import Rig

CASES = 3000
ARRIVING = 12  # messages sent while the report is held
HELD_S = 30.0  # the longest a hook holds its read (a safety net: the test releases it long before)


class Hold:
    """Wraps a count so that each call waits, inside its read, until released."""

    def __init__(self, real: Callable[..., Any]) -> None:
        self.real = real
        self.inside = threading.Event()
        self.release = threading.Event()

    def __call__(self, *args: Any, **kw: Any) -> Any:
        self.inside.set()
        assert self.release.wait(HELD_S), "never released"
        return self.real(*args, **kw)

    async def entered(self) -> None:
        assert await asyncio.to_thread(self.inside.wait, HELD_S), "the report never started"


@pytest.fixture
def cases(rig: Rig) -> Iterator[Rig]:
    seed(rig.app.engine, rig.app.dispatcher.directory, CASES)
    yield rig


def replies(rig: Rig, payloads: list[dict[str, Any]]) -> list[str]:
    """The texts DingTalk received through these messages' session webhooks."""
    hooks = {p["sessionWebhook"] for p in payloads}
    return [s.text for s in rig.emulator.sent if s.webhook in hooks]


async def submissions_answered_meanwhile(rig: Rig, tag: str) -> None:
    em = rig.emulator
    acked = len(em.acks)
    posts = [rig.payload(f"上洋村村民{tag}反映第{k}处路灯损坏已经两个月无人维修") for k in range(ARRIVING)]
    for p in posts:
        await em.deliver(p)
    await em.wait_for(lambda: len(em.acks) - acked == ARRIVING)
    assert set(list(em.acks.values())[-ARRIVING:]) == {200}
    await em.wait_for(lambda: len(replies(rig, posts)) == ARRIVING)
    assert all("#" in text for text in replies(rig, posts)), replies(rig, posts)


async def test_a_held_report_does_not_delay_the_messages_behind_it(cases: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    rig, em = cases, cases.emulator
    hold = Hold(info_commands.count_levels)
    monkeypatch.setattr(info_commands, "count_levels", hold)
    report = rig.payload("统计 2022", staff_id="d001", cid="cid-district")
    await em.deliver(report)
    await hold.entered()

    await submissions_answered_meanwhile(rig, "统计时")
    assert replies(rig, [report]) == []  # still held

    hold.release.set()
    await em.wait_for(lambda: len(replies(rig, [report])) == 1)
    [text] = replies(rig, [report])
    assert text.startswith("【统计】2022年 · 柯城区"), text


async def test_the_weekly_digest_holds_no_lock_while_it_counts(cases: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    rig, em = cases, cases.emulator
    hold = Hold(due.count_levels)
    monkeypatch.setattr(due, "count_levels", hold)
    monday = datetime.combine(date(2022, 12, 26), datetime.min.time(), tzinfo=SHANGHAI).replace(hour=9)
    runner = rig.app.job_runner(FrozenClock(monday))
    done: list[RunResult] = []
    job = threading.Thread(target=lambda: done.append(runner.run("weekly_digest", monday)))
    job.start()
    try:
        await hold.entered()
        await submissions_answered_meanwhile(rig, "通报时")
        report = rig.payload("列表", staff_id="d001", cid="cid-district")  # a read, too
        await em.deliver(report)
        await em.wait_for(lambda: len(replies(rig, [report])) == 1)
        assert not [s for s in em.sent if s.title == "每周通报"]  # the digest is still counting
    finally:
        hold.release.set()
        await asyncio.to_thread(job.join, HELD_S)
    [result] = done
    assert result.status == "done" and result.sent
    rig.runtime.sender.wake()  # type: ignore[union-attr]
    await em.wait_for(lambda: len([s for s in em.sent if s.title == "每周通报"]) == len(result.sent))


def test_a_report_answered_meanwhile_by_another_process_is_not_answered_twice(chat: Chat) -> None:
    d = chat.app.dispatcher
    msg = Incoming(
        msg_id="race-1",
        conversation_id="cid-district",
        sender_staff_id="d001",
        sender_nick="d001",
        text=" 统计 本年",
        create_at=chat.at,
        bot_user_id=BOT_ID,
        session_webhook=chat.webhook("race-1", "cid-district"),
        session_webhook_expires=chat.at + timedelta(hours=1),
    )
    d.receive(msg)
    late = d.prepare("race-1")  # this process computed the reply ...
    assert isinstance(late, Prepared)
    chat.process("race-1")  # ... another answered it first
    assert d.finish(late).outcome == "duplicate"  # the late write finds it done and writes nothing
    prepared = d.prepare("race-1")
    assert isinstance(prepared, Outcome) and prepared.outcome == "duplicate"
    chat.deliver()
    assert chat.reply_to("race-1").text.startswith("【统计】")  # exactly one reply reached DingTalk


def test_a_read_session_cannot_write_and_leaves_its_connection_writable(chat: Chat) -> None:
    engine = chat.app.engine
    with pytest.raises(DBAPIError), read_session(engine) as s:  # SQLite: OperationalError; PostgreSQL: InternalError
        s.execute(text("UPDATE people SET name = name"))
    with unit_of_work(engine) as s:  # the pooled connection again, writable
        assert s.execute(text("UPDATE people SET name = name")).rowcount > 0  # type: ignore[attr-defined]
