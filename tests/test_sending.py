"""Sending: custom group robots (signing, the 20/minute limit, errcode 130101), permanent
failures kept and visible, backoff with jitter."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from bot.app import build
from bot.cli import main as cli
from bot.org import SAMPLE
from bot.transport.sender import RobotLimiter, backoff_s
from models.clock import FrozenClock
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
