"""Sending: custom group robots (signing, the 20/minute limit, errcode 130101), permanent
failures kept and visible, backoff with jitter."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session, select

from bot.app import build
from bot.cli import main as cli
from bot.org import SAMPLE, RobotConfig
from bot.sandbox.emulator import HTML_LIMIT_PAGE, ROBOT_CODE, Emulator
from bot.transport.dingtalk_api import Credentials, DingTalkApi
from bot.transport.sender import OUTBOX, OutboxSender, RobotLimiter, backoff_s
from models import outbox
from models.clock import FrozenClock
from models.db import unit_of_work
from models.markdown import render_markdown
from models.tables import OutboxMessage
from tests.dingtalk import settings, start_runtime

ROBOT_TOKEN, ROBOT_SECRET = "robot-tok", "SECrobot"


def org_with_robot(tmp_path: Path, base_url: str) -> Path:
    text = SAMPLE.read_text(encoding="utf-8").replace(
        '  - {conversation_id: "cid-district", unit: 柯城区}',
        f'  - {{conversation_id: "cid-district", unit: 柯城区, robot: {{webhook: "{base_url}/robot/send?'
        f'access_token={ROBOT_TOKEN}", secret_env: LD_TEST_ROBOT_SECRET}}}}',
    )
    path = tmp_path / "org.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def rows(app) -> list[OutboxMessage]:  # type: ignore[no-untyped-def]
    with Session(app.engine) as s:
        return list(s.exec(select(OutboxMessage).where(OutboxMessage.kind == "group")))


async def test_group_message_goes_through_the_signed_custom_robot_and_130101_backs_off(
    tmp_path: Path,
    emulator_server,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    emulator, server = emulator_server
    emulator.robot_secrets[ROBOT_TOKEN] = ROBOT_SECRET
    monkeypatch.setenv("LD_TEST_ROBOT_SECRET", ROBOT_SECRET)
    clock = FrozenClock(datetime.now(UTC))
    app = build(settings(tmp_path, org_with_robot(tmp_path, emulator.base_url)))
    runtime = await start_runtime(app, server, clock, scheduler=False)
    try:
        await emulator.wait_for(lambda: len(emulator.connections) == 1)
        # The robot already sent 20 this minute: DingTalk answers 130101 and blocks it.
        emulator._robot_window[ROBOT_TOKEN].extend([time.monotonic()] * 20)
        for text in ("上报 上洋村宅基地审批8个月未批复,情绪激动", "上报 #1 村里协调不了"):
            await emulator.deliver(emulator.user_message("cid-shangyang", "v001", "张三", text))
        await emulator.deliver(emulator.user_message("cid-huayuan", "t101", "王五", "上报 #1 需区级协调"))
        await emulator.wait_for(lambda: len(emulator.sent) == 4)  # three replies, one township notice
        await runtime.pipeline.drain()  # type: ignore[union-attr]
        await runtime.sender.idle()  # type: ignore[union-attr]
        (row,) = [r for r in rows(app) if r.conversation_id == "cid-district"]
        assert (row.status, row.attempts, row.last_error) == ("pending", 1, "errcode 130101")
        assert row.next_attempt_at is not None and row.next_attempt_at - clock.now() >= timedelta(seconds=600)
        # Ten minutes later the block is over: sent once, through the robot, signed.
        emulator._robot_blocked_until.clear()
        emulator._robot_window.clear()
        clock.advance(timedelta(seconds=601))
        runtime.sender.wake()  # type: ignore[union-attr]
        await emulator.wait_for(lambda: any(s.channel == "robot" for s in emulator.sent))
        await runtime.sender.idle()  # type: ignore[union-attr]
        (row,) = [r for r in rows(app) if r.conversation_id == "cid-district"]
        assert (row.status, row.channel, row.attempts) == ("sent", "robot", 2)
        wire = render_markdown(row.text)  # the one renderer: DingTalk's line breaks
        assert [s.text.split("\n")[0] for s in emulator.sent if s.channel == "robot"] == [wire.split("\n")[0]]
    finally:
        await runtime.stop()
        app.engine.dispose()


async def test_a_wrong_robot_secret_is_a_permanent_failure_listed_by_the_cli(
    tmp_path: Path,
    emulator_server,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
) -> None:
    emulator, server = emulator_server
    emulator.robot_secrets[ROBOT_TOKEN] = ROBOT_SECRET
    monkeypatch.setenv("LD_TEST_ROBOT_SECRET", "not-the-secret")
    org = org_with_robot(tmp_path, emulator.base_url)
    app = build(settings(tmp_path, org))
    runtime = await start_runtime(app, server, scheduler=False)
    try:
        await emulator.wait_for(lambda: len(emulator.connections) == 1)
        await emulator.deliver(
            emulator.user_message("cid-huayuan", "t101", "王五", "上报 花园街道征迁补偿纠纷,多户村民")
        )
        await emulator.deliver(emulator.user_message("cid-huayuan", "t101", "王五", "上报 #1 需区级协调"))
        await emulator.wait_for(lambda: len(emulator.sent) == 2)
        await runtime.pipeline.drain()  # type: ignore[union-attr]
        await runtime.sender.idle()  # type: ignore[union-attr]
        (row,) = rows(app)
        assert (row.status, row.last_error) == ("failed", "errcode 310000")
    finally:
        await runtime.stop()
        app.engine.dispose()
    monkeypatch.setenv("DATABASE_URL", app.settings.database_url)
    assert cli(["--org", str(org), "outbox", "--failed"]) == 1
    out = capsys.readouterr().out
    assert "failed" in out and "cid-district" in out and "errcode 310000" in out


def test_robot_limiter_allows_twenty_a_minute() -> None:
    limiter = RobotLimiter()
    t0 = datetime(2020, 3, 2, 9, tzinfo=UTC)
    waits = [limiter.wait("hook", t0 + timedelta(seconds=i)) for i in range(21)]
    assert waits[:20] == [0.0] * 20 and waits[20] == pytest.approx(40.0)
    assert limiter.wait("hook", t0 + timedelta(seconds=60)) == 0.0  # the first of the minute has left
    assert limiter.wait("other-hook", t0) == 0.0


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    rng = random.Random(1)
    for attempt in range(1, 15):
        value = backoff_s(attempt, rng)
        assert 0.5 * min(600, 2**attempt) <= value <= min(600, 2**attempt)


# --- crash-safe sending and DingTalk's error answers, against the emulator ---------------------


@dataclass
class Desk:
    """The real OutboxSender and DingTalkApi against the emulator, on a frozen clock, with rows
    written through the one outbox writer."""

    emulator: Emulator
    engine: Engine
    clock: FrozenClock
    http: aiohttp.ClientSession
    robots: dict[str, RobotConfig]

    def sender(self, timeout_s: float = 10) -> OutboxSender:
        creds = Credentials(self.emulator.client_id, self.emulator.client_secret, ROBOT_CODE)
        api = DingTalkApi(self.http, self.emulator.base_url, creds, timeout_s)
        return OutboxSender(
            self.engine, api, _in_place, self.clock, self.robots, {"LD_TEST_ROBOT_SECRET": ROBOT_SECRET}, claim_s=30
        )

    def write(self, *rows: dict[str, Any]) -> None:
        with unit_of_work(self.engine) as session:
            outbox.write(session, list(rows))

    def reply(self, key: str, text: str, cid: str = "cid-shangyang") -> dict[str, Any]:
        return outbox.row(
            key,
            "reply",
            title="两难助手",
            text=text,
            created_at=self.clock.now(),
            conversation_id=cid,
            session_webhook=self.emulator.open_session(cid),
            webhook_expires_at=self.clock.now() + timedelta(hours=1),
        )

    def group(self, key: str, text: str, cid: str = "cid-district") -> dict[str, Any]:
        return outbox.row(key, "group", title="两难助手", text=text, created_at=self.clock.now(), conversation_id=cid)

    def users(self, key: str, text: str, user_ids: list[str]) -> dict[str, Any]:
        return outbox.row(key, "user", title="两难助手", text=text, created_at=self.clock.now(), user_ids=user_ids)

    def row(self, key: str) -> OutboxMessage:
        with Session(self.engine) as s:
            return s.exec(select(OutboxMessage).where(OutboxMessage.key == key)).one()

    def texts(self, channel: str) -> list[str]:
        return [s.text for s in self.emulator.sent if s.channel == channel]

    def later(self, key: str) -> None:
        """Move the clock to the row's retry time."""
        nxt = self.row(key).next_attempt_at
        assert nxt is not None
        self.clock.advance(nxt.replace(tzinfo=self.clock.now().tzinfo) - self.clock.now() + timedelta(seconds=1))


async def _in_place(fn: Any, *args: Any) -> Any:
    return fn(*args)


@pytest.fixture
async def desk(tmp_path: Path, emulator_server) -> AsyncIterator[Desk]:  # type: ignore[no-untyped-def]
    emulator, _server = emulator_server
    emulator.robot_secrets[ROBOT_TOKEN] = ROBOT_SECRET
    app = build(settings(tmp_path))
    robots = {
        "cid-robot": RobotConfig(f"{emulator.base_url}/robot/send?access_token={ROBOT_TOKEN}", "LD_TEST_ROBOT_SECRET")
    }
    async with aiohttp.ClientSession() as http:
        yield Desk(emulator, app.engine, FrozenClock(datetime.now(UTC)), http, robots)
    app.engine.dispose()


async def test_a_sender_cut_off_mid_pass_resends_at_most_the_one_send_under_way(desk: Desk) -> None:
    desk.write(*(desk.reply(f"reply:m{i}", f"第{i}号回复") for i in range(20)))
    first = asyncio.create_task(desk.sender().flush())
    await desk.emulator.wait_for(lambda: len(desk.emulator.sent) >= 5)
    first.cancel()  # the process dies here: whatever it had not recorded is lost with it
    with contextlib.suppress(asyncio.CancelledError):
        await first
    desk.clock.advance(timedelta(seconds=31))  # its lease lapses
    await desk.sender().flush()
    texts = desk.texts("session")
    assert sorted(set(texts)) == sorted(f"第{i}号回复" for i in range(20))  # nothing lost
    assert len(texts) - len(set(texts)) <= 1  # only the send under way at the cut may double
    assert texts == sorted(texts, key=lambda t: int(t[1:-3]))  # and the conversation kept its order


async def test_a_row_waits_behind_an_older_row_of_its_conversation_held_by_another_sender(desk: Desk) -> None:
    desk.write(desk.reply("reply:a", "甲"), desk.reply("reply:b", "乙"), desk.reply("reply:c", "丙", cid="cid-huayuan"))
    with unit_of_work(desk.engine) as session:  # another process took 甲 and has not finished it
        until = desk.clock.now() + timedelta(seconds=30)
        session.execute(update(OUTBOX).where(OUTBOX.c.key == "reply:a").values(claimed_until=until))
    await desk.sender().flush()
    assert desk.texts("session") == ["丙"]  # 乙 does not overtake 甲; other conversations go on
    desk.clock.advance(timedelta(seconds=31))  # that process died: its lease lapses
    await desk.sender().flush()
    assert desk.texts("session") == ["丙", "甲", "乙"]


async def test_a_custom_robot_resend_after_a_crash_carries_the_same_msg_uuid_and_shows_once(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk.write(desk.group("notice:m1:cid-robot", "请研判", cid="cid-robot"))
    sender = desk.sender()
    real = sender._record

    def crash_before_recording(outcomes: list[Any]) -> None:
        raise RuntimeError("killed between the send and its record")

    monkeypatch.setattr(sender, "_record", crash_before_recording)
    with pytest.raises(RuntimeError):
        await sender._pass()
    monkeypatch.setattr(sender, "_record", real)
    desk.clock.advance(timedelta(seconds=31))
    await desk.sender().flush()
    assert desk.texts("robot") == ["请研判"] and desk.emulator.deduplicated == 1  # DingTalk dropped the copy
    assert desk.row("notice:m1:cid-robot").status == "sent"


async def test_batch_send_retries_only_the_throttled_users_and_fails_the_unknown(desk: Desk) -> None:
    desk.emulator.faults.flow_controlled["t102"] = 1
    desk.emulator.faults.invalid_users.update({"gone1", "gone2"})
    desk.write(desk.users("n:1:users", "请处置", ["t101", "t102", "gone1"]), desk.users("n:2:users", "知悉", ["gone2"]))
    await desk.sender().flush()
    assert [s.user_ids for s in desk.emulator.sent] == [["t101"]]  # 200, but only t101 got it
    row = desk.row("n:1:users")
    assert (row.status, row.user_ids, row.last_error) == (
        "pending",
        ["t102"],
        "flowControlledStaffIdList 1, invalidStaffIdList 1",
    )
    assert (desk.row("n:2:users").status, desk.row("n:2:users").last_error) == ("failed", "invalidStaffIdList 1")
    desk.later("n:1:users")
    await desk.sender().flush()
    assert [s.user_ids for s in desk.emulator.sent] == [["t101"], ["t102"]]  # nobody told twice
    assert desk.row("n:1:users").status == "sent"


async def test_an_empty_or_html_200_is_not_taken_for_sent(desk: Desk) -> None:
    desk.emulator.faults.raw_200_next["/robot/sendBySession"] = ["", HTML_LIMIT_PAGE]
    desk.write(desk.reply("reply:h", "收到"))
    await desk.sender().flush()
    assert desk.texts("session") == [] and desk.row("reply:h").last_error == "HTTP 200 empty"
    desk.later("reply:h")
    await desk.sender().flush()
    row = desk.row("reply:h")
    assert row.status == "pending" and row.last_error == "HTTP 200 not JSON"
    assert row.next_attempt_at is not None  # the IP limit's page: five minutes away
    assert row.next_attempt_at.replace(tzinfo=UTC) - desk.clock.now() >= timedelta(seconds=300)
    desk.later("reply:h")
    await desk.sender().flush()
    assert desk.texts("session") == ["收到"] and desk.row("reply:h").status == "sent"


async def test_a_webhook_that_never_answers_is_given_up_on_and_retried(desk: Desk) -> None:
    desk.emulator.faults.hang_next["/robot/sendBySession"] = 1  # held open, never answered
    desk.write(desk.reply("reply:n", "收到"), desk.reply("reply:o", "另一群", cid="cid-huayuan"))
    await desk.sender(timeout_s=0.5).flush()  # the client's timeout ends the wait, not the server
    hung = [desk.row(k) for k in ("reply:n", "reply:o") if desk.row(k).status == "pending"]
    assert len(hung) == 1 and hung[0].next_attempt_at is not None  # kept for a retry, not failed
    assert len(desk.texts("session")) == 1  # the other conversation was not held up
    desk.later(hung[0].key)
    await desk.sender(timeout_s=0.5).flush()
    assert sorted(desk.texts("session")) == sorted(["收到", "另一群"])  # once each
    assert {desk.row(k).status for k in ("reply:n", "reply:o")} == {"sent"}


async def test_custom_robot_busy_is_retried_and_410100_blocks_like_130101(desk: Desk) -> None:
    desk.emulator.faults.errcode_next["/robot/send"] = [-1, 410100]
    desk.write(desk.group("notice:m2:cid-robot", "请研判", cid="cid-robot"))
    await desk.sender().flush()
    row = desk.row("notice:m2:cid-robot")
    assert (row.status, row.last_error) == ("pending", "errcode -1")  # 系统繁忙: not a failure for good
    desk.later("notice:m2:cid-robot")
    await desk.sender().flush()
    row = desk.row("notice:m2:cid-robot")
    assert (row.status, row.last_error) == ("pending", "errcode 410100")
    assert row.next_attempt_at is not None
    assert row.next_attempt_at.replace(tzinfo=UTC) - desk.clock.now() >= timedelta(seconds=600)
    desk.later("notice:m2:cid-robot")
    await desk.sender().flush()
    assert desk.texts("robot") == ["请研判"]


async def test_the_monthly_quota_pauses_the_openapi_keeps_the_rows_and_says_so_once(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    desk.emulator.faults.quota_spent = True
    desk.write(desk.group("g:1:cid-district", "周报"), desk.group("g:2:cid-huayuan", "周报", cid="cid-huayuan"))
    desk.write(desk.reply("reply:q", "收到"))
    sender = desk.sender()
    with caplog.at_level(logging.ERROR, logger="bot.transport.sender"):
        await sender.flush()
    assert desk.texts("session") == ["收到"]  # the session webhook is not the OpenAPI: replies go on
    for key in ("g:1:cid-district", "g:2:cid-huayuan"):
        row = desk.row(key)
        assert (row.status, row.attempts) == ("pending", 0)  # kept, uncounted: nothing lost
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "quota" in errors[0].getMessage()
    desk.emulator.faults.quota_spent = False  # the organisation upgraded, or a new month
    desk.later("g:1:cid-district")
    await sender.flush()
    assert sorted(s.conversation_id or "" for s in desk.emulator.sent if s.channel == "group") == [
        "cid-district",
        "cid-huayuan",
    ]


async def test_openapi_sends_use_the_client_id_when_no_robot_code_is_set(desk: Desk) -> None:
    creds = Credentials(desk.emulator.client_id, desk.emulator.client_secret, "")  # DINGTALK_ROBOT_CODE unset
    api = DingTalkApi(desk.http, desk.emulator.base_url, creds)
    await api.group_send("cid-district", "两难助手", "周报")  # an empty robotCode would be refused
    assert [s.conversation_id for s in desk.emulator.sent] == ["cid-district"]
