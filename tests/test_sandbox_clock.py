"""The sandbox page's clock control: jump the bot's clock ahead, and the scheduled jobs that
became due run at once (a newcomer sees a Tuesday without waiting for one)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from aiohttp.test_utils import TestServer

from bot.app import build
from bot.commands.sandbox import clock_stepper
from bot.org import load_org
from bot.sandbox.emulator import Emulator
from bot.sandbox.web import Ran, jump_target, ran_summary
from models.calendar import WorkdayCalendar
from models.clock import SHANGHAI, FrozenClock, ShiftedClock
from tests.dingtalk import settings, start_runtime
from tests.scheduling import at
from tests.test_sandbox_page import post, serve_page

WAGES = "航埠镇新村拖欠工资23人,工人准备集体上访"
FRIDAY = at(date(2020, 11, 27), 15)


async def test_jumps_move_the_clock_and_bad_ones_are_refused(emulator_server: tuple[Emulator, TestServer]) -> None:
    clock = ShiftedClock(FrozenClock(FRIDAY))
    moved: list[datetime] = []

    async def on_moved(_before: datetime, after: datetime) -> list[Ran]:
        moved.append(after)
        return []

    async with serve_page(emulator_server[0], load_org(), clock=clock, on_clock_moved=on_moved) as (client, _):
        start = await (await client.get("/api/clock")).json()
        assert start == {"now": "2020-11-27T15:00:00+08:00", "label": "11月27日(周五) 15:00", "shifted": False}
        for jump, expected in (
            ("tuesday_0830", "2020-12-01T08:30:00+08:00"),
            ("next_workday_0900", "2020-12-01T09:00:00+08:00"),  # the same day, still ahead
            ("next_workday_0900", "2020-12-02T09:00:00+08:00"),
            ("monday_0900", "2020-12-07T09:00:00+08:00"),
        ):
            response = await client.post("/api/clock", json={"jump": jump})
            assert response.status == 200
            assert (await response.json())["now"] == expected
            shown = await (await client.get("/api/clock")).json()
            assert (shown["now"], shown["shifted"]) == (expected, True)
        assert shown["label"] == "12月7日(周一) 09:00"
        back = await (await client.post("/api/clock", json={"jump": "now"})).json()
        assert (back["now"], back["shifted"]) == ("2020-11-27T15:00:00+08:00", False)
        assert len(moved) == 5
        for body in ({"jump": "friday"}, {"jump": None}, ["tuesday_0830"]):
            response = await client.post("/api/clock", json=body)
            assert response.status == 400 and await response.text() == "未知的时间跳转"
        response = await client.post("/api/clock", data="not json")
        assert response.status == 400
        assert len(moved) == 5 and clock.offset.total_seconds() == 0


def test_the_next_working_day_skips_holidays() -> None:
    national_day = datetime(2020, 9, 30, 18, tzinfo=SHANGHAI)
    assert jump_target("next_workday_0900", national_day, WorkdayCalendar()) == at(date(2020, 10, 9), 9)


async def test_jumping_to_tuesday_sends_the_no_meeting_day_reminder(
    tmp_path: Path, emulator_server: tuple[Emulator, TestServer]
) -> None:
    emulator, server = emulator_server
    clock = ShiftedClock()
    clock.jump_to(at(date(2020, 11, 26), 10))  # a Thursday; real time keeps running from there
    emulator.clock = clock
    app = build(settings(tmp_path), clock)
    runtime = await start_runtime(app, server, clock)
    try:
        await emulator.wait_for(lambda: len(emulator.connections) == 1)

        stepper = clock_stepper(runtime, clock)
        async with serve_page(emulator, app.org, clock=clock, on_clock_moved=stepper) as (client, _):
            history = emulator.history["cid-district"]
            await post(client, f"@两难助手 上报 {WAGES}", staff="d001", cid="cid-district")
            await emulator.wait_for(lambda: len(history) == 2)
            await post(client, "@两难助手 交办 #1 @钱七 限10个工作日 周二无会日", staff="d001", cid="cid-district")
            await emulator.wait_for(lambda: len(history) == 4)
            assert not any("【周二无会日】" in e["text"] for e in history)

            response = await client.post("/api/clock", json={"jump": "tuesday_0830"})
            assert (await response.json())["now"].startswith("2020-12-01T08:30:")
            await emulator.wait_for(lambda: any(e["text"].startswith("【周二无会日】") for e in history))
            [reminder] = [e for e in history if e["text"].startswith("【周二无会日】")]
            lines = [line.rstrip() for line in reminder["text"].splitlines()]  # markdown: "  \n" breaks
            assert reminder["from"] == "bot" and lines[0] == "【周二无会日】今日待办 1 件"
            # The OpenAPI group send cannot @: the owner is named plainly and told one to one.
            assert lines[1].startswith("钱七 #1 ") and reminder["at"] == []
            await emulator.wait_for(lambda: any(s.channel == "user" and s.user_ids == ["p001"] for s in emulator.sent))
    finally:
        await runtime.stop()
        app.engine.dispose()


async def test_a_jump_runs_each_job_at_its_own_time_and_says_what_it_sent(
    tmp_path: Path, emulator_server: tuple[Emulator, TestServer]
) -> None:
    emulator, server = emulator_server
    clock = ShiftedClock()
    clock.jump_to(at(date(2020, 11, 26), 10))  # a Thursday
    emulator.clock = clock
    app = build(settings(tmp_path), clock)
    runtime = await start_runtime(app, server, clock)
    try:
        await emulator.wait_for(lambda: len(emulator.connections) == 1)
        stepper = clock_stepper(runtime, clock)
        async with serve_page(emulator, app.org, clock=clock, on_clock_moved=stepper) as (client, _):
            history = emulator.history["cid-district"]
            await post(client, f"@两难助手 上报 {WAGES}", staff="d001", cid="cid-district")
            await emulator.wait_for(lambda: len(history) == 2)
            await post(client, "@两难助手 交办 #1 @钱七 限10个工作日 周二无会日", staff="d001", cid="cid-district")
            await emulator.wait_for(lambda: len(history) == 4)

            quiet = await (await client.post("/api/clock", json={"jump": "next_workday_0900"})).json()
            assert quiet["now"].startswith("2020-11-27T09:00:")  # Friday: only the ladder, with nothing due
            assert quiet["ran"] == "11月27日(周五) 09:00 工作日 到期提醒、逾期催办、告知领导、逾期通报:无需发送"

            # Straight to Tuesday 17:30: Monday 09:00, Monday 16:00, Tuesday 08:30 and 09:00 each ran
            # at its own time (nothing recorded as missed), then the Tuesday evening summary.
            moved = await (await client.post("/api/clock", json={"jump": "tuesday_1730"})).json()
            assert moved["now"].startswith("2020-12-01T17:30:")
            lines = moved["ran"].splitlines()
            assert [line.split(" ")[1] for line in lines] == ["09:00", "09:00", "16:00", "08:30", "09:00", "17:30"]
            assert "11月30日(周一) 16:00 周一 预告明天周二无会日的办理件(区级群):发出 1 条" in lines
            assert any(line.startswith("12月1日(周二) 08:30 ") and "发出" in line for line in lines)
            await emulator.wait_for(lambda: any("明天" in e["text"] and "周二无会日" in e["text"] for e in history))
            back = await (await client.post("/api/clock", json={"jump": "now"})).json()
            assert back["shifted"] is False and "ran" in back  # years ahead: a catch-up, not 300 weeks of steps
    finally:
        await runtime.stop()
        app.engine.dispose()


def test_a_jump_with_nothing_due_says_so() -> None:
    assert ran_summary(()) == "这段时间没有到期的定时任务。"
    monday = at(date(2020, 11, 30), 16)
    assert ran_summary([(monday, "周一 预告", 0)]) == "11月30日(周一) 16:00 周一 预告:无需发送"
