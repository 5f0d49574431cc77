"""DingTalk to-dos (待办) for the 包案人 along a case's life, as the emulator's to-do API received
them; and rows a CLI process queues, sent by a running bot within seconds."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlmodel import Session

from bot.sandbox.emulator import Emulator
from bot.sandbox.todos import Todo
from models.clock import SHANGHAI
from models.tables import Person
from models.todos import due_ms
from tests.conftest import Chat
from tests.scheduling import at, district_case

SUBMISSION = "上报 上洋村村民反映宅基地审批8个月未批复,联系电话13812345678"
PUBLIC = "https://liandong.example.gov.cn"
MONDAY = datetime(2020, 3, 2, 9, 0, tzinfo=SHANGHAI)


@pytest.fixture
def todo_chat(chat: Chat) -> Iterator[Chat]:
    """The chat, 钱七 (p001) given a union_id, the emulator's to-dos cleared (it serves the whole
    test process), and the case page's public address configured."""
    with Session(chat.app.engine) as s:
        person = s.get(Person, "p001")
        assert person is not None
        person.union_id = "union-p001"
        s.add(person)
        s.commit()
    chat.dingtalk.emulator.todos.tasks.clear()
    chat.sender.public_url = PUBLIC
    yield chat
    chat.sender.public_url = ""


def _to_district(chat: Chat) -> None:
    chat.say("v001", SUBMISSION, at=MONDAY)
    chat.say("v001", "上报 #1")
    chat.say("t101", "上报 #1")


def _todos(chat: Chat, union_id: str = "union-p001") -> list[Todo]:
    return chat.dingtalk.emulator.todos.of(union_id)


def test_a_todo_follows_the_case_from_assignment_to_reopening(todo_chat: Chat) -> None:
    chat = todo_chat
    _to_district(chat)
    r = chat.say("d001", "交办 #1 限5个工作日", mentions=("p001",))
    assert r.reply.startswith("#1 已交办 @钱七")
    [todo] = _todos(chat)
    assert todo.subject.startswith("#1 ") and "13812345678" not in todo.description
    assert todo.due_time == due_ms(date(2020, 3, 9)) and todo.executor_ids == ["union-p001"]
    assert todo.detail_url == {"appUrl": f"{PUBLIC}/dashboard/issues/1", "pcUrl": f"{PUBLIC}/dashboard/issues/1"}
    assert todo.union_id == "union-p001" and not todo.done

    chat.say("p001", "延期 #1 3个工作日 等鉴定")
    chat.say("d001", "同意延期 #1")
    assert todo.due_time == due_ms(date(2020, 3, 12)) and todo.updates == [{"dueTime": due_ms(date(2020, 3, 12))}]

    chat.say("p001", "办结 #1 已补办手续")
    assert todo.done
    chat.say("d001", "重办 #1 当事人仍有异议")
    assert not todo.done
    chat.say("p001", "办结 #1 再次办结")
    chat.say("v001", "不满意 #1 补偿款仍未到位")
    assert not todo.done and [u.get("done") for u in todo.updates[1:]] == [True, False, True, False]
    assert _todos(chat) == [todo]  # one to-do all along


def test_a_failing_todo_call_is_retried_and_the_reply_goes_out_first(todo_chat: Chat) -> None:
    chat = todo_chat
    _to_district(chat)
    chat.dingtalk.emulator.faults.fail_next["/v1.0/todo/users/union-p001/tasks"] = 2
    r = chat.say("d001", "交办 #1 限5个工作日", mentions=("p001",))
    assert r.reply.startswith("#1 已交办")  # answered although DingTalk's to-do API failed
    assert _todos(chat) == []
    # An update queued before the create succeeded waits for it.
    chat.say("p001", "办结 #1 已补办手续")
    assert _todos(chat) == []
    for _ in range(6):  # the retries, each past its backoff
        chat.clock.at += timedelta(minutes=5)
        chat.deliver()
    [todo] = _todos(chat)
    assert todo.done and [u.get("done") for u in todo.updates] == [True]
    create, done = [o for o in chat.outbox() if o.kind == "todo"]
    assert (create.status, create.attempts) == ("sent", 3)  # two 503s, then created
    assert done.status == "sent" and done.attempts > 1  # it waited for the task id


def test_no_union_id_no_todo(todo_chat: Chat, caplog: pytest.LogCaptureFixture) -> None:
    chat = todo_chat
    _to_district(chat)
    with caplog.at_level("INFO", logger="models.todos"):
        r = chat.say("d001", "交办 #1 限5个工作日", mentions=("d002",))
    assert r.reply.startswith("#1 已交办") and chat.dingtalk.emulator.todos.tasks == {}
    assert [rec.levelname for rec in caplog.records if "union_id" in rec.getMessage()] == ["INFO"]
    assert not [o for o in chat.outbox() if o.kind == "todo"]


def test_without_a_public_url_the_todo_has_no_link(todo_chat: Chat) -> None:
    chat = todo_chat
    chat.sender.public_url = ""
    _to_district(chat)
    chat.say("d001", "交办 #1", mentions=("p001",))
    [todo] = _todos(chat)
    assert todo.detail_url is None and todo.due_time is None


async def test_the_emulator_refuses_what_dingtalk_refuses() -> None:
    emulator = Emulator()
    server = TestServer(emulator.app(), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            base = str(server.make_url("")).rstrip("/")
            url = f"{base}/v1.0/todo/users/u1/tasks"
            async with http.post(url, json={"subject": "x"}, headers={"x-acs-dingtalk-access-token": "no"}) as r:
                assert r.status == 400 and (await r.json())["code"] == "InvalidAuthentication"
            async with http.post(
                f"{base}/v1.0/oauth2/accessToken", json={"appKey": "sandbox-id", "appSecret": "sandbox-secret"}
            ) as r:
                token = {"x-acs-dingtalk-access-token": (await r.json())["accessToken"]}
            async with http.post(url, json={"description": "no subject"}, headers=token) as r:
                body = await r.json()
                assert r.status == 400 and set(body) == {"code", "message", "requestid"}
            async with http.post(url, json={"subject": "x", "dueTime": "tomorrow"}, headers=token) as r:
                assert r.status == 400 and (await r.json())["message"] == "dueTime is invalid"
            async with http.post(url, json={"subject": "x", "sourceId": "s1"}, headers=token) as r:
                task = (await r.json())["id"]
            async with http.post(url, json={"subject": "x", "sourceId": "s1"}, headers=token) as r:
                assert r.status == 400 and (await r.json())["message"] == "task exist"
            async with http.put(f"{base}/v1.0/todo/users/u2/tasks/{task}", json={"done": True}, headers=token) as r:
                assert r.status == 400 and (await r.json())["message"] == "task not exist"
            async with http.put(f"{url}/{task}", json={"done": True}, headers=token) as r:
                assert r.status == 200 and emulator.todos.tasks[task].done
    finally:
        await server.close()


WAGES = "航埠镇新村拖欠工资23人,涉及金额40万元,工人准备集体上访"


async def test_remind_now_from_another_process_is_sent_by_the_running_bot_within_seconds(
    chat: Chat, emulator_server: tuple[Emulator, TestServer], tmp_path: Path
) -> None:
    emulator, _ = emulator_server
    district_case(chat, WAGES, "d002", at(date(2020, 11, 24)), "周二无会日 截止11月30日")
    env = {
        **os.environ,
        "DATABASE_URL": chat.app.settings.database_url,
        "DINGTALK_CLIENT_ID": "sandbox-id",
        "DINGTALK_CLIENT_SECRET": "sandbox-secret",
        "DINGTALK_ROBOT_CODE": "dingsandboxrobot",
        "DINGTALK_OPENAPI_ENDPOINT": emulator.base_url,
    }
    log = (tmp_path / "bot.log").open("w")
    bot = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "run", "--no-web", env=env, stdout=asyncio.subprocess.DEVNULL, stderr=log
    )
    try:
        await emulator.wait_for(lambda: len(emulator.connections) == 1, timeout=30)
        cli = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "remind",
            "--at",
            "2020-12-01T08:00",
            "--now",
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
        )
        assert await cli.wait() == 0
        # Without the sender's idle poll the bot would see these rows only at its next timer (30 s).
        await emulator.wait_for(lambda: any("【周二无会日】今日待办" in s.text for s in emulator.sent), timeout=6)
    finally:
        bot.terminate()
        await bot.wait()
        log.close()
