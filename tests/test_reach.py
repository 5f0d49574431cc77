"""Reaching the person who must act (PRODUCT §5a, issue 10): at each must-act moment of a case's
life the person who must act is notified through a channel that notifies them in DingTalk (a
real @ in a group they belong to: the session webhook's at.atUserIds; else one to one with the
bot), nobody else is pinged, and no text carries an @ without a real at. Asserted on what the
DingTalk emulator received."""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import Session, select

from bot.org import load_org
from bot.sandbox.emulator import Sent
from bot.sandbox.notices import AGENT_ID
from models import audience
from models.tables import Person
from tests.conftest import Chat
from tests.scheduling import at, district_case, runner_at
from tests.test_schedule_jobs import WAGES, seed_tuesday_cases

TOWNSHIP_CASE = "上报 花园街道某小区物业纠纷,业主情绪激动,准备集体上访"
VILLAGE_CASE = "上报 上洋村村民李某反映宅基地审批提交8个月仍未批复,联系电话13812345678"
AT_CHANNELS = ("session", "robot")  # the channels that carry at.atUserIds (DINGTALK.md)


DIRECT_CHANNELS = ("user", "work", "ding")  # one to one with the bot, a work notification, a DING


def pinged(sent: list[Sent]) -> list[str]:
    """Whom these messages notify in real DingTalk: a real @ on a channel that carries one, or a
    direct message (oToMessages/batchSend, a work notification, a DING notify their recipients)."""
    out: list[str] = []
    for s in sent:
        if s.channel in DIRECT_CHANNELS:
            out += s.user_ids
        elif s.channel in AT_CHANNELS:
            out += s.at_user_ids
    return sorted(out)


def honest(chat: Chat, sent: list[Sent]) -> None:
    """No @<staffId> and no @姓名 without a real at on a channel that carries it."""
    with Session(chat.app.engine) as s:
        people = {p.id: p.name for p in s.exec(select(Person))}
    for m in sent:
        real = set(m.at_user_ids) if m.channel in AT_CHANNELS else set()
        assert m.at_user_ids == [] or m.channel in AT_CHANNELS, m
        for pid, name in people.items():
            if pid not in real:
                assert f"@{pid}" not in m.text and f"@{name}" not in m.text, (pid, m)


def step(chat: Chat, person: str, text: str, **kw: object) -> tuple[object, list[Sent]]:
    before = len(chat.received)
    r = chat.say(person, text, **kw)  # type: ignore[arg-type]
    new = chat.received[before:]
    honest(chat, new)
    return r, new


def test_a_new_case_at_the_township_pings_its_lead_in_the_township_group(chat: Chat) -> None:
    r, new = step(chat, "t001", TOWNSHIP_CASE)
    assert r.sent.conversation_id == "cid-huayuan" and r.sent.channel == "session"  # type: ignore[attr-defined]
    assert r.at == ("t101",) and "@t101 请研判" in r.sent.text  # type: ignore[attr-defined]
    assert pinged(new) == ["t101"]


def test_an_escalation_to_the_district_reaches_the_duty_lead_only(chat: Chat) -> None:
    chat.say("t001", TOWNSHIP_CASE)
    _, new = step(chat, "t101", "上报 #1 需区里协调")
    assert pinged(new) == ["d001"]  # duty_leads: ["d001"] in the sample org, not every district lead
    [notice] = chat.received_in("cid-district")
    assert notice.channel == "group" and "赵六 请交办" in notice.text  # the OpenAPI: a plain name
    [direct] = chat.received_by("d001")
    assert direct.text == notice.text


def test_without_duty_leads_an_escalation_reaches_every_district_lead(chat: Chat) -> None:
    chat.app.dispatcher.duty_leads = ()
    chat.say("t001", TOWNSHIP_CASE)
    _, new = step(chat, "t101", "上报 #1 需区里协调")
    assert pinged(new) == ["d001", "d002", "d003"]


def test_an_assignment_reaches_the_owner_by_an_at_where_they_are_a_member_else_directly(chat: Chat) -> None:
    chat.say("d001", "上报 全区多个小区物业费纠纷集中爆发,业主情绪激动")
    r, new = step(chat, "d001", "交办 #1 区自然资源局 限10个工作日", mentions=("p001",))
    # A department counts as below the district: 钱七 is a member of the district group.
    assert r.at == ("p001",) and r.sent.channel == "session" and pinged(new) == ["p001"]  # type: ignore[attr-defined]
    chat.say("t101", TOWNSHIP_CASE)
    r, new = step(chat, "t101", "交办 #2 限5天", mentions=("v001",))
    # 张三 sits in his village's group, not the township's: told one to one.
    assert r.at == () and "已交办 张三" in r.reply and pinged(new) == ["v001"]  # type: ignore[attr-defined]
    [direct] = chat.received_by("v001")
    assert direct.text.startswith("#2 已交办 张三")


def test_someone_seen_posting_in_a_group_is_a_member_of_it(chat: Chat) -> None:
    chat.say("t101", TOWNSHIP_CASE)
    chat.say("v001", "帮助", cid="cid-huayuan")  # 张三 posts in the township group once
    r, new = step(chat, "t101", "交办 #1 限5天", mentions=("v001",))
    assert r.at == ("v001",) and pinged(new) == ["v001"]  # type: ignore[attr-defined]


def test_an_extension_request_reaches_the_lead_who_assigned_or_last_approved(chat: Chat) -> None:
    district_case(chat, WAGES, "p002", at(date(2020, 3, 2)), "限5个工作日")
    _, new = step(chat, "p002", "延期 #1 3个工作日 等待仲裁结果")
    assert pinged(new) == ["d001"]  # who assigned it
    _, new = step(chat, "d002", "同意延期 #1")
    assert pinged(new) == ["p002"]
    _, new = step(chat, "p002", "延期 #1 2个工作日 仲裁延期")
    assert pinged(new) == ["d002"]  # who last approved it


def test_the_revisit_reaches_the_reporter_and_dissatisfaction_the_owner(chat: Chat) -> None:
    chat.say("v001", VILLAGE_CASE)
    chat.say("v001", "上报 #1 村里无法协调")
    chat.say("t101", "上报 #1")
    chat.say("d001", "交办 #1 区自然资源局 限10个工作日", mentions=("p001",))
    _, new = step(chat, "p001", "化解 #1 已补办手续")
    assert pinged(new) == ["v001"]  # once, though the reply and the village group both name him
    [origin] = [m for m in new if m.conversation_id == "cid-shangyang"]
    assert "张三 请回访" in origin.text
    r, new = step(chat, "v001", "不满意 #1 证还没发下来")
    assert "钱七 请跟进" in r.reply and pinged(new) == ["p001"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("agent_id", [None, AGENT_ID])
def test_tuesday_morning_reaches_each_owner(chat: Chat, agent_id: str | None) -> None:
    chat.sender.agent_id = agent_id  # the owners are district group members: no work notification
    seed_tuesday_cases(chat)
    tuesday = at(date(2020, 12, 1), 8, 30)
    runner_at(chat, tuesday).run("tuesday_morning", tuesday)
    new = chat.deliver()
    honest(chat, new)
    assert pinged(new) == ["d002", "p001"]
    [group] = [m for m in new if m.conversation_id == "cid-district"]
    assert group.channel == "group" and "孙八 #2" in group.text and "钱七 #1" in group.text


@pytest.mark.parametrize("agent_id", [None, AGENT_ID])
def test_overdue_reaches_the_owner_and_two_working_days_later_the_assigning_lead(
    chat: Chat, agent_id: str | None
) -> None:
    chat.sender.agent_id = agent_id  # with an AgentId the lead's notice is a work notification
    district_case(chat, WAGES, "p002", at(date(2020, 3, 2)), "限3天")
    chat.say("d002", "督办 #1", at=at(date(2020, 3, 3)))  # another lead's 督办 does not make him answer for it
    lead = "work" if agent_id else "user"
    steps = (
        (date(2020, 3, 4), ["p002"], "user"),
        (date(2020, 3, 6), ["p002"], "user"),
        (date(2020, 3, 10), ["d001"], lead),
    )
    for d, who, channel in steps:
        nine = at(d, 9)
        runner_at(chat, nine).run("overdue_ladder", nine)
        new = chat.deliver()
        honest(chat, new)
        assert pinged(new) == who, (d, new)
        assert [m.channel for m in new if m.user_ids] == [channel], (d, new)


def test_membership_follows_the_org_file() -> None:
    org = load_org()
    assert org.duty_leads == ("d001",)
    parents = {1: None, 2: 1, 3: 2, 4: 1}  # district, township, its village, a department
    assert audience.home_group_unit(3, parents, {1, 2}) == 2  # a village without a group: its township's
    assert audience.home_group_unit(4, parents, {1, 2}) == 1  # a department: the district's
    assert audience.home_group_unit(3, parents, {1, 2, 3}) == 3
    assert audience.plain("@王五 请研判 @王五五", ["王五五", "王五"]) == "王五 请研判 王五五"


def test_the_members_list_of_a_group_makes_its_people_members(chat: Chat) -> None:
    with Session(chat.app.engine) as s, s.begin():
        audience.sync_members(s, {"cid-district": ["t101"]})
    with Session(chat.app.engine) as s:
        assert "t101" in audience.members(s, "cid-district")
        assert "v001" not in audience.members(s, "cid-district") and "p001" in audience.members(s, "cid-district")


def test_a_reply_whose_session_webhook_expired_names_the_lead_plainly_and_tells_him_directly(chat: Chat) -> None:
    chat.dingtalk.emulator.faults.session_expired = True
    with pytest.raises(AssertionError, match="0 times through its session webhook"):
        chat.say("t001", TOWNSHIP_CASE)  # the reply falls back to the OpenAPI group send
    honest(chat, chat.received)
    [group] = chat.received_in("cid-huayuan")
    assert group.channel == "group" and "王五 请研判" in group.text and group.at_user_ids == []
    assert pinged(chat.received) == ["t101"]  # the OpenAPI cannot @ him: he hears it one to one
