"""Interactive cards (互动卡片) through the real SDK-based stream client and the emulator: the 回访
goes out as a card when a template is configured, a press changes the case exactly as the typed
command does, once however often DingTalk delivers the callback, a press without the right is
refused and changes nothing, and the card is updated in place. Without a template: markdown."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import Session, select

from bot.app import build
from bot.sandbox.cards import Card
from bot.sandbox.emulator import Emulator
from bot.sandbox.web import SandboxPage
from handlers.replies import deadline_text
from models.tables import CardInstance, InboxMessage, Issue, IssueEvent
from tests.dingtalk import Rig, settings, start_runtime

SUBMISSION = "上报 上洋村村民反映宅基地审批8个月未批复,联系电话13812345678"
TEMPLATE = "tpl-liandong-case.schema"


@pytest.fixture
async def card_rig(tmp_path: Path, emulator_server: tuple[Emulator, TestServer]) -> AsyncIterator[Rig]:
    emulator, server = emulator_server
    app = build(dataclasses.replace(settings(tmp_path), card_template_id=TEMPLATE))
    runtime = await start_runtime(app, server)
    await emulator.wait_for(lambda: len(emulator.connections) == 1)
    yield Rig(emulator, server, app, runtime)
    await runtime.stop()
    app.engine.dispose()


async def _say(rig: Rig, text: str, staff_id: str = "v001", cid: str = "cid-shangyang", **kw: Any) -> None:
    """A message, acknowledged by the bot (so stored), then processed and its replies sent."""
    acked = len(rig.emulator.acks)
    await rig.emulator.deliver(rig.payload(text, staff_id=staff_id, cid=cid, **kw))
    await rig.emulator.wait_for(lambda: len(rig.emulator.acks) > acked)
    await rig.settle()


async def _resolved(rig: Rig, n: int = 1) -> None:
    """Case #n reported by 张三 (v001) in the village, escalated, and 办结 by the township lead."""
    await _say(rig, SUBMISSION)
    await _say(rig, f"上报 #{n} 需要街道协调")
    await _say(rig, f"办结 #{n} 已补办手续", staff_id="t101", cid="cid-huayuan")


async def _assigned(rig: Rig) -> None:
    """Case #1 reported in the village, escalated to the district and 交办 by 赵六 (d001) to 钱七 (p001)."""
    await _say(rig, SUBMISSION)
    await _say(rig, "上报 #1")
    await _say(rig, "上报 #1", staff_id="t101", cid="cid-huayuan")
    await _say(rig, "交办 #1 限5个工作日", staff_id="d001", cid="cid-district", mentions=["p001"])


async def _press(rig: Rig, frame: dict[str, Any] | None = None, *args: str) -> dict[str, Any]:
    """Press a button (or deliver a press's frame again), wait for the bot's ack, and settle."""
    if frame is None:
        frame = await rig.emulator.cards.press(*args)
    else:
        await rig.emulator.cards.push(frame)
    message_id = frame["headers"]["messageId"]
    await rig.emulator.wait_for(lambda: message_id in rig.emulator.acks)
    await rig.settle()
    return frame


def _village_card(rig: Rig, issue: int = 1) -> Card:
    [card] = [c for c in rig.emulator.cards.in_space("cid-shangyang") if c.params["issue"] == f"#{issue}"]
    return card


def _issue(rig: Rig, n: int) -> Issue:
    with Session(rig.app.engine) as s:
        issue = s.get(Issue, n)
        assert issue is not None
        return issue


def _events(rig: Rig, n: int) -> list[tuple[str, dict[str, Any]]]:
    with Session(rig.app.engine) as s:
        rows = s.exec(select(IssueEvent).where(IssueEvent.issue_id == n).order_by(IssueEvent.id)).all()  # type: ignore[arg-type]
        return [(e.kind, dict(e.data)) for e in rows]


async def test_the_revisit_goes_out_as_a_card_that_ats_the_reporter(card_rig: Rig) -> None:
    rig = card_rig
    await _resolved(rig)
    card = _village_card(rig)
    assert card.template_id == TEMPLATE and card.space_type == "IM_GROUP"
    assert card.body["openSpaceId"] == "dtv1.card//IM_GROUP.cid-shangyang" and card.body["callbackType"] == "STREAM"
    assert card.body["imGroupOpenDeliverModel"]["robotCode"] == "dingsandboxrobot" and card.body["userIdType"] == 1
    assert card.at_user_ids == {"v001": "张三"}  # a real @ of the one who must act, a member there
    assert [b["label"] for b in card.buttons()] == ["满意", "不满意"]
    assert card.params["content"].startswith("#1【已办结】") and "@" not in card.params["content"]
    # In the township group, where 张三 is not a member, the card @s nobody.
    [township] = [c for c in rig.emulator.cards.in_space("cid-huayuan") if c.params["issue"] == "#1"]
    assert township.at_user_ids == {}
    with Session(rig.app.engine) as s:
        tracks = {c.out_track_id for c in s.exec(select(CardInstance)).all()}
    assert set(rig.emulator.cards.cards) == tracks  # every card maps back to its case and step


async def test_a_press_changes_the_case_as_the_typed_command_once_though_delivered_twice(card_rig: Rig) -> None:
    rig = card_rig
    await _resolved(rig, 1)
    await _resolved(rig, 2)
    await _say(rig, "不满意 #2 补偿款仍未到位")  # the typed twin

    frame = await _press(rig, None, _village_card(rig, 1).out_track_id, "v001", "dissatisfied", "补偿款仍未到位")
    rig.emulator.acks.clear()
    await _press(rig, frame)  # DingTalk delivers the same callback again

    one, two = _issue(rig, 1), _issue(rig, 2)
    assert one.status == two.status and one.status != "resolved"
    assert _events(rig, 1)[-1] == _events(rig, 2)[-1] == ("reopened", {"reason": "补偿款仍未到位", "by": "reporter"})
    assert [k for k, _ in _events(rig, 1)] == [k for k, _ in _events(rig, 2)]  # nothing twice
    with Session(rig.app.engine) as s:
        presses = [m for m in s.exec(select(InboxMessage)).all() if m.msg_id.startswith("card:")]
    assert len(presses) == 1 and presses[0].outcome == "ok"
    answers = [s for s in rig.emulator.sent if s.text.startswith("#1 已因回访不满意重办")]
    # Answered once: in the card's group, and 王五, who must follow up, one to one (as typed).
    assert sorted((a.channel, a.conversation_id or a.user_ids[0]) for a in answers) == [
        ("group", "cid-shangyang"),
        ("user", "t101"),
    ]
    card = _village_card(rig, 1)
    assert card.updates == [{"answer": card.params["answer"], "answered": "true"}]
    assert card.params["answer"].startswith("#1 已因回访不满意重办") and card.buttons() == []


async def test_a_press_without_the_right_is_refused_and_changes_nothing(card_rig: Rig) -> None:
    rig = card_rig
    await _resolved(rig)
    before = _events(rig, 1)
    await _press(rig, None, _village_card(rig).out_track_id, "v002", "dissatisfied", "我也不满意")
    assert _events(rig, 1) == before and _issue(rig, 1).status == "resolved"
    [answer] = [s for s in rig.emulator.sent if s.text.startswith("只有#1的原上报人")]
    assert answer.text == "只有#1的原上报人可以回复不满意。"
    assert _village_card(rig).updates == [] and len(_village_card(rig).buttons()) == 2


async def test_a_press_without_a_reason_says_what_is_missing(card_rig: Rig) -> None:
    rig = card_rig
    await _resolved(rig)
    await _press(rig, None, _village_card(rig).out_track_id, "v001", "dissatisfied")
    assert _issue(rig, 1).status == "resolved" and _village_card(rig).updates == []
    assert any("不满意的原因" in s.text for s in rig.emulator.sent)


async def test_satisfied_closes_the_card_and_changes_nothing(card_rig: Rig) -> None:
    rig = card_rig
    await _resolved(rig)
    before = _events(rig, 1)
    await _press(rig, None, _village_card(rig).out_track_id, "v001", "satisfied")
    assert _events(rig, 1) == before
    assert _village_card(rig).params["answer"] == "#1 回访满意,感谢反馈。"


async def test_an_extension_card_is_approved_by_a_press_of_the_lead_only(card_rig: Rig) -> None:
    rig = card_rig
    await _assigned(rig)
    await _say(rig, "延期 #1 3个工作日 等鉴定", staff_id="p001", cid="cid-district")
    [card] = [c for c in rig.emulator.cards.in_space("cid-district") if c.params["step"] == "extension"]
    assert card.at_user_ids == {"d001": "赵六"} and [b["label"] for b in card.buttons()] == ["同意", "不同意"]
    deadline = _issue(rig, 1).deadline

    await _press(rig, None, card.out_track_id, "p001", "approve")  # the 包案人 may not approve their own
    assert _issue(rig, 1).deadline == deadline and card.updates == []
    assert any(s.text.startswith("同意延期需由") for s in rig.emulator.sent)

    await _press(rig, None, card.out_track_id, "d001", "approve")
    assert _issue(rig, 1).deadline != deadline and _events(rig, 1)[-1][0] == "extension_approved"
    assert card.params["answered"] == "true" and card.params["answer"].startswith("#1 已同意延期")


async def test_an_extension_card_is_refused_by_a_press_with_the_reason_and_the_deadline_stays(card_rig: Rig) -> None:
    rig = card_rig
    await _assigned(rig)
    await _say(rig, "延期 #1 3个工作日 等鉴定", staff_id="p001", cid="cid-district")
    [card] = [c for c in rig.emulator.cards.in_space("cid-district") if c.params["step"] == "extension"]
    assert [b["label"] for b in card.buttons()] == ["同意", "不同意"] and card.params["inputHint"] == "不同意的理由"
    deadline, before = _issue(rig, 1).deadline, _events(rig, 1)

    await _press(rig, None, card.out_track_id, "d001", "reject")  # no reason: asked for, nothing changes
    assert _events(rig, 1) == before and card.updates == []
    assert any("不同意的理由" in s.text for s in rig.emulator.sent)
    await _press(rig, None, card.out_track_id, "p001", "reject", "我不同意")  # the 包案人 may not refuse it
    assert _events(rig, 1) == before and any(s.text.startswith("不同意延期需由") for s in rig.emulator.sent)

    frame = await _press(rig, None, card.out_track_id, "d001", "reject", "鉴定结果已出,请按期办结")
    rig.emulator.acks.clear()
    await _press(rig, frame)  # delivered again: once
    assert _events(rig, 1) == [*before, ("extension_rejected", {"days": 3, "reason": "鉴定结果已出,请按期办结"})]
    issue = _issue(rig, 1)
    assert issue.deadline == deadline and issue.extension_days is None  # the deadline stays, no request pending
    answers = [s for s in rig.emulator.sent if s.text.startswith("#1 延期申请未获同意")]
    # Answered once where he pressed (an OpenAPI send: no @), and the requester told in their own chat.
    assert sorted((a.channel, a.conversation_id or a.user_ids[0]) for a in answers) == [
        ("group", "cid-district"),
        ("user", "p001"),
    ]
    assert all("@" not in a.text and f"仍按原{deadline_text(deadline)}" in a.text for a in answers)
    assert card.params["answered"] == "true" and card.buttons() == []
    assert card.params["answer"].startswith("#1 延期申请未获同意:鉴定结果已出") and "@" not in card.params["answer"]
    await _say(rig, "同意延期 #1", staff_id="d001", cid="cid-district")  # nothing is left to approve
    assert _issue(rig, 1).deadline == deadline and _events(rig, 1)[-1][0] == "extension_rejected"


async def test_a_case_reaching_the_district_is_a_card_for_its_duty_lead_to_review_and_assign(card_rig: Rig) -> None:
    rig = card_rig
    await _say(rig, SUBMISSION)
    await _say(rig, "上报 #1")
    assert rig.emulator.cards.cards == {}  # reaching the township: markdown, as before
    await _say(rig, "上报 #1 需要区里协调", staff_id="t101", cid="cid-huayuan")
    [card] = [c for c in rig.emulator.cards.in_space("cid-district") if c.params["step"] == "district"]
    assert card.at_user_ids == {"d001": "赵六"}  # the duty lead only (duty_leads in the org file)
    assert [b["label"] for b in card.buttons()] == ["研判", "交办"] and "姓名" in card.params["inputHint"]
    assert card.params["content"].startswith("新上报 #1") and "@" not in card.params["content"]
    assert [c.space_id for c in rig.emulator.cards.cards.values()] == ["cid-district"]  # the township's reply: text

    await _press(rig, None, card.out_track_id, "p001", "review", "需住建部门协调")  # not district staff: refused
    assert _issue(rig, 1).status == "submitted" and card.updates == []
    await _press(rig, None, card.out_track_id, "d001", "review", "需住建部门协调 风险:高")
    assert _events(rig, 1)[-1] == ("reviewed", {"opinion": "需住建部门协调", "risk": "高", "litigation_risk": False})
    assert card.params["answer"].startswith("#1 已研判") and len(card.buttons()) == 2  # still to be 交办

    await _press(rig, None, card.out_track_id, "d001", "assign", "钱七 限5个工作日")  # the owner by name
    kind, data = _events(rig, 1)[-1]
    assert kind == "assigned" and data["owner_id"] == "p001" and data["deadline"] is not None
    assert card.params["answered"] == "true" and card.buttons() == []
    # The 交办 goes on as typed: the 包案人's own card to 反馈 / 办结.
    [owner] = [c for c in rig.emulator.cards.in_space("cid-district") if c.params["step"] == "assigned"]
    assert owner.at_user_ids == {"p001": "钱七"}


async def test_a_district_card_press_of_assign_without_a_name_asks_for_the_owner(card_rig: Rig) -> None:
    rig = card_rig
    await _say(rig, SUBMISSION)
    await _say(rig, "上报 #1")
    await _say(rig, "上报 #1", staff_id="t101", cid="cid-huayuan")
    [card] = [c for c in rig.emulator.cards.in_space("cid-district") if c.params["step"] == "district"]
    before = _events(rig, 1)
    await _press(rig, None, card.out_track_id, "d001", "assign")
    assert _events(rig, 1) == before and card.updates == [] and len(card.buttons()) == 2
    assert rig.emulator.sent[-1].text.startswith("请@包案人")  # what is missing, in one line
    await _press(rig, None, card.out_track_id, "v001", "assign", "钱七")  # a village cadre may not 交办 here
    assert _events(rig, 1) == before and any(s.text.startswith("交办需由") for s in rig.emulator.sent)


async def test_without_a_template_the_revisit_is_markdown_as_before(rig: Rig) -> None:
    await _resolved(rig)
    assert rig.emulator.cards.cards == {}
    assert any(s.text.startswith("#1【已办结】") for s in rig.emulator.sent)


async def test_the_emulator_refuses_a_card_dingtalk_would_refuse(emulator_server: tuple[Emulator, TestServer]) -> None:
    emulator, server = emulator_server
    url = str(server.make_url("")).rstrip("/") + "/"
    good: dict[str, Any] = {
        "outTrackId": "t1",
        "cardTemplateId": TEMPLATE,
        "callbackType": "STREAM",
        "openSpaceId": "dtv1.card//IM_GROUP.cid-shangyang",
        "cardData": {"cardParamMap": {"title": "x"}},
        "imGroupOpenSpaceModel": {"supportForward": False},
        "imGroupOpenDeliverModel": {"robotCode": "dingsandboxrobot", "atUserIds": {"v001": "张三"}},
    }
    async with aiohttp.ClientSession() as http:
        auth = {"appKey": emulator.client_id, "appSecret": emulator.client_secret}
        async with http.post(url + "v1.0/oauth2/accessToken", json=auth) as resp:
            token = (await resp.json())["accessToken"]

        async def deliver(body: dict[str, Any], tok: str = token) -> tuple[int, dict[str, Any]]:
            headers = {"x-acs-dingtalk-access-token": tok}
            async with http.post(url + "v1.0/card/instances/createAndDeliver", json=body, headers=headers) as resp:
                return resp.status, await resp.json()

        assert (await deliver(good, "wrong"))[0] == 401
        for broken in (
            {k: v for k, v in good.items() if k != "outTrackId"},
            {k: v for k, v in good.items() if k != "imGroupOpenDeliverModel"},
            {**good, "openSpaceId": "cid-shangyang"},
            {**good, "cardData": {"cardParamMap": {"n": 1}}},
            {**good, "imGroupOpenDeliverModel": {"robotCode": "dingsandboxrobot", "atUserIds": ["v001"]}},
        ):
            status, body = await deliver(broken)
            assert status == 400 and set(body) == {"code", "message", "requestid"}
        status, body = await deliver(good)
        assert status == 200 and body["result"]["deliverResults"][0]["success"] is True
        assert (await deliver(good))[0] == 400  # the outTrackId is taken


async def test_the_sandbox_page_shows_the_card_and_a_press_there_reaches_the_bot(card_rig: Rig) -> None:
    rig = card_rig
    await _resolved(rig)
    sandbox = SandboxPage(rig.emulator, rig.app.org, long_poll_s=0)
    client = TestClient(TestServer(sandbox.app(), host="127.0.0.1"))
    await client.start_server()
    try:
        shown = await (await client.get("/api/messages", params={"conversation": "cid-shangyang"})).json()
        [card] = [m["card"] for m in shown["messages"] if "card" in m]
        assert [b["label"] for b in card["buttons"]] == ["满意", "不满意"] and card["input"] == "不满意的原因"
        press = {"track": card["track"], "action": "dissatisfied", "reason": "补偿款仍未到位", "staff_id": "v001"}
        response = await client.post("/api/press", json=press)
        assert response.status == 200, await response.text()
        await rig.emulator.wait_for(lambda: _village_card(rig).updates != [])
        assert _issue(rig, 1).status != "resolved"
        shown = await (await client.get("/api/messages", params={"conversation": "cid-shangyang"})).json()
        [card] = [m["card"] for m in shown["messages"] if "card" in m]
        assert card["buttons"] == [] and card["answer"].startswith("#1 已因回访不满意重办")  # updated in place
        assert (await client.post("/api/press", json=press)).status == 400  # the button is gone
    finally:
        await client.close()


async def test_the_assigned_card_takes_progress_and_then_the_result_from_the_owner(card_rig: Rig) -> None:
    rig = card_rig
    await _assigned(rig)
    [card] = [c for c in rig.emulator.cards.in_space("cid-district") if c.params["step"] == "assigned"]
    assert card.at_user_ids == {"p001": "钱七"} and [b["label"] for b in card.buttons()] == ["反馈", "办结"]

    await _press(rig, None, card.out_track_id, "p001", "feedback", "已约谈当事人")
    assert _events(rig, 1)[-1] == ("feedback", {"text": "已约谈当事人"})
    assert card.params["answered"] == "false" and card.params["answer"].startswith("#1 已记录进展")  # still open

    await _press(rig, None, card.out_track_id, "v002", "resolve", "我来办结")  # not the owner, not a lead
    assert _issue(rig, 1).status != "resolved" and len(card.updates) == 1

    await _press(rig, None, card.out_track_id, "p001", "resolve", "已补办手续")
    assert _issue(rig, 1).status == "resolved" and _events(rig, 1)[-1] == ("resolved", {"result": "已补办手续"})
    assert card.params["answered"] == "true" and card.buttons() == []


async def test_a_press_the_bot_cannot_read_is_acknowledged_and_changes_nothing(card_rig: Rig) -> None:
    rig = card_rig
    await _resolved(rig)
    track = _village_card(rig).out_track_id
    inbox = len(rig.inbox())
    for change in ({"content": "not json"}, {"outTrackId": "ld-unknown"}, {"userId": ""}):
        frame = rig.emulator.cards.press_frame(track, "v001", "satisfied")
        data = {**json.loads(frame["data"]), **change}
        frame = {**frame, "data": json.dumps(data)}
        await _press(rig, frame)
        assert rig.emulator.acks[frame["headers"]["messageId"]] == 200  # answered: not delivered again
    assert len(rig.inbox()) == inbox and _village_card(rig).updates == []


async def test_a_card_dingtalk_refuses_for_good_goes_out_as_markdown(card_rig: Rig) -> None:
    rig = card_rig
    rig.emulator.cards.templates = {"some-other-template"}  # ours was never published
    await _resolved(rig)
    assert rig.emulator.cards.cards == {}
    sent = [s for s in rig.emulator.sent if s.text.startswith("#1【已办结】")]
    assert {s.conversation_id for s in sent if s.channel == "group"} == {"cid-shangyang", "cid-huayuan"}
    assert any(s.channel == "user" and s.user_ids == ["v001"] for s in sent)  # 张三 told one to one


async def test_the_supervision_card_is_acknowledged_by_the_owner_only(card_rig: Rig) -> None:
    rig = card_rig
    await _assigned(rig)
    await _say(rig, "督办 #1", staff_id="d002", cid="cid-district")
    [card] = [c for c in rig.emulator.cards.in_space("cid-district") if c.params["step"] == "supervised"]
    assert card.at_user_ids == {"p001": "钱七"} and [b["label"] for b in card.buttons()] == ["已知悉", "办结"]
    before = _events(rig, 1)

    await _press(rig, None, card.out_track_id, "d002", "acknowledge")  # a lead cannot acknowledge for the owner
    assert card.updates == [] and any(s.text == "已知悉由#1的包案人回复。" for s in rig.emulator.sent)
    await _press(rig, None, card.out_track_id, "p001", "acknowledge")
    assert _events(rig, 1) == before  # nothing changes
    assert card.params["answer"].startswith("#1 已知悉") and len(card.buttons()) == 2  # still there to 办结


async def test_a_lead_reached_one_to_one_gets_the_card_in_their_chat_with_the_bot(card_rig: Rig) -> None:
    rig = card_rig
    await _assigned(rig)
    # The 包案人 asks in their own chat with the bot: 赵六 hears of it in his, as a card.
    await _say(rig, "延期 #1 3个工作日 等鉴定", staff_id="p001", cid="cid-p001", conversation_type="1")
    [card] = [c for c in rig.emulator.cards.in_space("d001") if c.params["step"] == "extension"]
    assert card.space_type == "IM_ROBOT" and card.body["openSpaceId"] == "dtv1.card//IM_ROBOT.d001"
    assert card.body["imRobotOpenDeliverModel"] == {"spaceType": "IM_ROBOT", "robotCode": "dingsandboxrobot"}
    await _press(rig, None, card.out_track_id, "d001", "approve")
    assert _events(rig, 1)[-1][0] == "extension_approved" and card.params["answered"] == "true"
    answers = [s for s in rig.emulator.sent if s.text.startswith("#1 已同意延期")]
    # Answered where he pressed, and the 包案人 told of the new deadline in theirs.
    assert sorted((a.channel, a.user_ids[0]) for a in answers) == [("user", "d001"), ("user", "p001")]
