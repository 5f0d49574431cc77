"""Work notifications (工作通知) and DING, as the emulator received them: the must-act moments that
matter beyond chat reach exactly the person who must act on that channel; without an AgentId
the person hears it one to one instead; a failed call is retried and never holds a chat reply
back; DING is off unless LIANDONG_DING_OVERDUE asks for it; the emulator refuses what DingTalk
refuses."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlmodel import Session, select

from bot.config import Settings
from bot.org import load_org
from bot.sandbox.emulator import ROBOT_CODE, Emulator, Sent
from bot.sandbox.notices import AGENT_ID, DING, WORK, WORK_RESULT
from bot.transport.dingtalk_api import Credentials, DingTalkApi, SendError
from models.tables import OutboxMessage
from schedules.runs import JobRunner
from tests.conftest import Chat
from tests.scheduling import at, district_case, runner_at
from tests.test_reach import honest, pinged
from tests.test_sandbox_page import serve_page
from tests.test_schedule_jobs import HOMESTEAD, WAGES

MONDAY = at(date(2020, 3, 2))  # WAGES assigned 限3天: due Thursday 5 March 2020
TWO_LATE = at(date(2020, 3, 10), 9)  # 2 working days overdue: the assigning lead is told
FIVE_LATE = at(date(2020, 3, 13), 9)  # 5 working days overdue: 通报, and the DING if asked for


@pytest.fixture
def work_chat(chat: Chat) -> Iterator[Chat]:
    """The chat, its sender given the app's AgentId."""
    chat.sender.agent_id = AGENT_ID
    yield chat
    chat.sender.agent_id = None


def _ladder(chat: Chat, when: Any, ding: bool = False) -> list[Sent]:
    runner: JobRunner = runner_at(chat, when)
    runner.ding = ding
    assert runner.run("overdue_ladder", when).status == "done"
    new = chat.deliver()
    honest(chat, new)
    return new


def _rows(chat: Chat, kind: str) -> list[OutboxMessage]:
    with Session(chat.app.engine) as s:
        return list(s.exec(select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)))


def _overdue_case(chat: Chat) -> None:
    district_case(chat, WAGES, "p002", MONDAY, "限3天")
    _ladder(chat, at(date(2020, 3, 6), 9))  # the 催办 to the owner, before the lead's step


def test_two_working_days_overdue_reaches_the_assigning_lead_by_a_work_notification(work_chat: Chat) -> None:
    chat = work_chat
    _overdue_case(chat)
    new = _ladder(chat, TWO_LATE)
    [work] = [m for m in new if m.channel == "work"]
    assert work.user_ids == ["d001"] and work.at_user_ids == [] and "@" not in work.text
    assert work.text.startswith("【逾期提醒】") and "包案 叶俊杰" in work.text
    assert [m.channel for m in new] == ["work"]  # no chat message besides it: nobody else is pinged
    [row] = _rows(chat, "work")
    assert (row.status, row.channel, row.user_ids) == ("sent", "work", ["d001"])


def test_without_an_agent_id_the_lead_hears_it_one_to_one(chat: Chat) -> None:
    _overdue_case(chat)
    new = _ladder(chat, TWO_LATE)
    assert [(m.channel, m.user_ids) for m in new] == [("user", ["d001"])]
    [row] = _rows(chat, "work")  # the same row: only the channel differs
    assert (row.status, row.channel) == ("sent", "openapi")


def test_tuesday_morning_reaches_an_owner_outside_the_district_group_by_a_work_notification(work_chat: Chat) -> None:
    chat = work_chat
    # 王五 (t101), the township lead, sits in the township's group, not the district's.
    district_case(chat, HOMESTEAD, "t101", at(date(2020, 11, 24)), "限10个工作日 周二无会日")
    district_case(chat, WAGES, "d002", at(date(2020, 11, 25)), "周二无会日 截止11月30日")
    tuesday = at(date(2020, 12, 1), 8, 30)
    runner_at(chat, tuesday).run("tuesday_morning", tuesday)
    new = chat.deliver()
    honest(chat, new)
    [work] = [m for m in new if m.channel == "work"]
    assert work.user_ids == ["t101"] and work.text.startswith("【周二无会日】") and "@" not in work.text.split("\n")[1]
    [group] = [m for m in new if m.conversation_id == "cid-district"]
    assert "王五 #1" in group.text and "@王五" not in group.text
    assert pinged(new) == ["d002", "t101"]  # the member as before (one to one: an OpenAPI group send)
    assert [m.channel for m in new if "t101" in m.user_ids] == ["work"]


def test_a_failed_work_notification_is_retried_and_never_blocks_the_chat_reply(work_chat: Chat) -> None:
    chat = work_chat
    _overdue_case(chat)
    chat.dingtalk.emulator.faults.fail_next[WORK] = 1
    chat.dingtalk.emulator.faults.errcode_next[WORK] = [-1]  # then 系统繁忙
    assert _ladder(chat, TWO_LATE) == []
    r = chat.say("p002", "反馈 #1 已约谈企业负责人", at=TWO_LATE)
    assert r.reply.startswith("#1")  # answered while the work notification waits for its retry
    [row] = _rows(chat, "work")
    assert (row.status, row.attempts) == ("pending", 1) and row.last_error == "HTTP 503"
    sent: list[Sent] = []
    for _ in range(4):  # each retry past its backoff
        chat.clock.at += timedelta(minutes=5)
        sent += chat.deliver()
    assert [(m.channel, m.user_ids) for m in sent] == [("work", ["d001"])]
    [row] = _rows(chat, "work")
    assert (row.status, row.attempts) == ("sent", 3)


def test_a_refused_work_notification_is_recorded_not_retried(work_chat: Chat) -> None:
    chat = work_chat
    chat.sender.agent_id = "999"  # not this app's AgentId: DingTalk answers 40056
    _overdue_case(chat)
    assert _ladder(chat, TWO_LATE) == []
    [row] = _rows(chat, "work")
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, "errcode 40056")


def test_a_spent_monthly_quota_keeps_the_work_notification_for_later(work_chat: Chat) -> None:
    chat = work_chat
    _overdue_case(chat)
    chat.dingtalk.emulator.faults.quota_spent = True  # asyncsend_v2 answers errcode 90020
    assert _ladder(chat, TWO_LATE) == []
    [row] = _rows(chat, "work")
    assert (row.status, row.attempts) == ("pending", 0)  # waiting, uncounted, not failed
    chat.dingtalk.emulator.faults.quota_spent = False
    chat.clock.at += timedelta(hours=1)
    assert [(m.channel, m.user_ids) for m in chat.deliver()] == [("work", ["d001"])]


def test_ding_is_off_by_default_and_reaches_only_the_owner_when_asked_for(work_chat: Chat) -> None:
    chat = work_chat
    _overdue_case(chat)
    _ladder(chat, TWO_LATE)
    new = _ladder(chat, FIVE_LATE)
    assert [m.channel for m in new] == ["group"] and not _rows(chat, "ding")  # the 通报 only
    assert not Settings.from_env(environ={}).ding_overdue


def test_ding_on_dings_the_owner_of_a_case_five_working_days_overdue(work_chat: Chat) -> None:
    chat = work_chat
    _overdue_case(chat)
    _ladder(chat, TWO_LATE)
    new = _ladder(chat, FIVE_LATE, ding=True)
    [ding] = [m for m in new if m.channel == "ding"]
    assert ding.user_ids == ["p002"] and "#1 逾期已满 5 个工作日" in ding.text
    assert sorted(m.channel for m in new) == ["ding", "group"]
    assert _ladder(chat, FIVE_LATE + timedelta(days=3), ding=True) == []  # once per case and deadline


def test_a_ding_dingtalk_could_not_deliver_is_recorded(work_chat: Chat) -> None:
    chat = work_chat
    _overdue_case(chat)
    _ladder(chat, TWO_LATE)
    chat.dingtalk.emulator.faults.invalid_users = {"p002"}  # in ding/send's failedList
    assert [m.channel for m in _ladder(chat, FIVE_LATE, ding=True)] == ["group"]
    [row] = _rows(chat, "ding")
    assert (row.status, row.last_error) == ("failed", "failedList 1")


def test_the_settings_name_the_agent_id_and_the_ding_switch() -> None:
    env = {"DINGTALK_AGENT_ID": " 3000000001 ", "LIANDONG_DING_OVERDUE": "1"}
    settings = Settings.from_env(environ=env)
    assert (settings.agent_id, settings.ding_overdue) == ("3000000001", True)
    assert Settings.from_env(environ={"LIANDONG_DING_OVERDUE": "0"}).ding_overdue is False
    assert Settings.from_env(environ={}).agent_id is None


async def test_the_emulator_refuses_what_dingtalk_refuses(emulator_server: tuple[Emulator, TestServer]) -> None:
    emulator, _ = emulator_server
    base = emulator.base_url
    if True:
        async with aiohttp.ClientSession() as http:
            creds = Credentials(emulator.client_id, emulator.client_secret, ROBOT_CODE)
            api = DingTalkApi(http, base, creds)
            token = await api.access_token()
            md = {"msgtype": "markdown", "markdown": {"title": "t", "text": "x"}}

            async def work(body: dict[str, Any], tok: str = token, path: str = WORK) -> dict[str, Any]:
                async with http.post(f"{base}{path}?access_token={tok}", json=body) as r:
                    assert r.status == 200  # the oapi style: errors in the body
                    data: dict[str, Any] = await r.json()
                    return data

            ok = {"agent_id": AGENT_ID, "userid_list": "u1", "msg": md}
            assert (await work(ok, "bad"))["errcode"] == 40014
            assert (await work({**ok, "agent_id": ""}))["errcode"] == 40035
            assert (await work({**ok, "agent_id": "1"}))["errcode"] == 40056
            assert (await work({**ok, "userid_list": ["u1"]}))["errcode"] == 40035  # a string, not a list
            assert (await work({**ok, "userid_list": ",".join(f"u{i}" for i in range(101))}))["errcode"] == 40035
            assert (await work({**ok, "msg": {"msgtype": "markdown", "markdown": {"title": "t"}}}))["errcode"] == 40035
            first = await work({**ok, "userid_list": "u1,u2"})
            again = await work(ok)  # the same content to u1 the same day: accepted, not delivered
            assert first["errcode"] == again["errcode"] == 0
            assert [s.user_ids for s in emulator.sent] == [["u1", "u2"]]
            result = await work({"agent_id": AGENT_ID, "task_id": again["task_id"]}, path=WORK_RESULT)
            assert result["send_result"]["forbidden_user_id_list"] == ["u1"]

            async def ding(body: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, Any]:
                h = {"x-acs-dingtalk-access-token": token} if headers is None else headers
                async with http.post(f"{base}{DING}", json=body, headers=h) as r:
                    return r.status, await r.json()

            good = {"robotCode": ROBOT_CODE, "remindType": 1, "receiverUserIdList": ["u1"], "content": "x"}
            assert (await ding(good, {}))[0] == 401
            status, body = await ding({**good, "content": ""})
            assert status == 400 and set(body) == {"code", "message", "requestid"}
            assert (await ding({**good, "receiverUserIdList": []}))[0] == 400
            assert (await ding({**good, "remindType": 9}))[0] == 400
            assert (await ding({**good, "robotCode": ""}))[1]["code"] == "invalidParameter.robotCode.empty"
            assert (await ding(good))[0] == 200 and emulator.sent[-1].channel == "ding"
            # The client: a refusal is a permanent SendError; a work send's answer its task id.
            with pytest.raises(SendError) as refused:
                await api.work_send("1", ["u3"], "t", "x")
            assert not refused.value.retryable and str(refused.value) == "errcode 40056"
            assert await api.work_send(AGENT_ID, ["u3"], "t", "x")
            assert await api.ding_send(["u4"], "x") == []
            # A token DingTalk no longer takes (40014) is fetched again for the retry.
            api._token = ("stale", float("inf"))
            with pytest.raises(SendError) as stale:
                await api.work_send(AGENT_ID, ["u5"], "t", "x")
            assert stale.value.retryable and stale.value.token and api._token is None


async def test_the_sandbox_shows_work_notifications_in_the_one_to_one_view_labelled_as_such(
    emulator_server: tuple[Emulator, TestServer],
) -> None:
    emulator, _ = emulator_server
    async with aiohttp.ClientSession() as http:
        api = DingTalkApi(http, emulator.base_url, Credentials(emulator.client_id, emulator.client_secret, ROBOT_CODE))
        await api.user_send(["d001"], "到期提醒", "#1 明天到期")
        await api.work_send(AGENT_ID, ["d001"], "逾期提醒", "【逾期提醒】#1 逾期已满 2 个工作日")
        await api.ding_send(["d001"], "#1 逾期已满 5 个工作日")
    async with serve_page(emulator, load_org()) as (client, _page):
        shown = await (await client.get("/api/direct", params={"staff": "d001"})).json()
    assert [m["meta"] for m in shown["messages"]] == ["机器人", "工作通知", "DING"]
    assert "逾期已满 2 个工作日" in shown["messages"][1]["html"]
