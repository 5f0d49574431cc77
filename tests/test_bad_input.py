"""Bad input gets one clear Chinese line and changes nothing; the refusal is recorded."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from handlers.incoming import Incoming
from models.tables import InboxMessage
from tests.conftest import Chat

SUBMISSION = "上报 上洋村村民反映宅基地审批8个月未批复"


@pytest.mark.parametrize(
    ("person", "text", "expected"),
    [
        ("v001", "查 #99", "未找到 #99,请核对编号。"),
        ("v001", "研判 #99 同意", "未找到 #99,请核对编号。"),
        ("v001", "反馈", "请写明问题编号,如「反馈 #12 进展」。"),
        ("v001", "办结 #1", "请写明办理结果,如「化解 #1 已补办手续」。"),
        ("v001", "反馈 #1", "请写明进展,如「反馈 #1 已约谈当事人」。"),
        ("v001", "合并 #1", "请写明两个编号,如「合并 #12 #15」(#15 并入 #12)。"),
        ("a001", "绑定 不存在街道", "未知单位「不存在街道」,请用组织架构中的名称。"),
        ("a001", "绑定 新村", "「新村」有重名,请写成:航埠镇/新村、石梁镇/新村。"),
        ("a001", "绑定", "请写明单位,如「绑定 花园街道」。"),
        ("v001", "统计 明年", "无法识别统计时段「明年」,可用:本周/本月/本年/2020/2020-01-01~2020-06-30。"),
        ("v001", "统计 2020-13", "无法识别统计时段「2020-13」,可用:本周/本月/本年/2020/2020-01-01~2020-06-30。"),
        ("v001", "上报", "请在「上报」后写明问题内容,如「上报 上洋村宅基地审批8个月未批复」。"),
        ("v001", "x" * 4001, "消息过长(超过4000字),请精简后分条发送。"),
        ("v001", "上报 村里道路\ufffd\ufffd塌方", "消息含无法识别的字符,请重新输入后发送。"),
        ("v001", "交半 #1", "没有听懂。你是不是想用「交办」?回复「帮助」看用法。"),
        ("unknown", "上报 有人反映道路塌方很久了", "unknown还未登记,请联系管理员添加。"),
    ],
)
def test_bad_input_gets_its_reply_and_changes_nothing(chat: Chat, person: str, text: str, expected: str) -> None:
    chat.say("v001", SUBMISSION)  # #1 exists, at village level
    before = chat.state()
    r = chat.say(person, text, msg_id="bad", cid="cid-shangyang")
    assert (r.outcome, r.reply) == ("refused", expected)
    assert chat.state() == before
    with Session(chat.app.engine) as s:
        row = s.get(InboxMessage, "bad")
        assert row is not None and (row.outcome, row.reason) == ("refused", expected)


@pytest.mark.parametrize("text", ["", "   ", "@两难助手", "　@两难助手　"])
def test_empty_text_or_only_a_mention_gets_the_help(chat: Chat, text: str) -> None:
    before = chat.state()
    r = chat.say("v001", text)
    assert r.outcome == "refused" and r.reply.startswith("两难助手用法")
    assert chat.state() == before


def test_exactly_4000_characters_is_accepted(chat: Chat) -> None:
    r = chat.say("v001", "上报 " + "道" * 3997)
    assert r.outcome == "ok" and r.reply.startswith("已登记 #1")


def test_full_width_forms_and_mention_residue(chat: Chat) -> None:
    chat.say("v001", SUBMISSION)
    r = chat.say("v001", "　上报　＃１：村里协调不了　")
    assert r.outcome == "ok" and r.reply.startswith("#1 已上报至花园街道")


def test_picture_and_other_types_get_a_polite_line(chat: Chat) -> None:
    before = chat.state()
    r = chat.say("v001", "", msgtype="audio")
    assert (r.outcome, r.reply) == ("refused", "暂只支持文字消息,请用文字描述。")
    assert chat.state() == before


def test_sender_known_only_by_union_id(chat: Chat) -> None:
    msg = Incoming(
        msg_id="u1",
        conversation_id="cid-shangyang",
        sender_staff_id=None,
        sender_nick="张三",
        sender_union_id="union-v001",
        text="上报 村里道路塌方,影响通行",
        create_at=chat.at,
    )
    r = chat.send(msg)
    assert r.outcome == "ok" and chat.issue(r.issue_id or 0).reporter_id == "v001"


def test_a_crash_in_a_handler_is_recorded_and_answered(chat: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from handlers import verbs

    def boom(ctx):  # type: ignore[no-untyped-def]
        chat.app.dispatcher  # noqa: B018
        raise RuntimeError("boom")

    monkeypatch.setitem(verbs.FORMS, "帮助", (replace(verbs.FORMS["帮助"][0], run=boom),))
    before = chat.state()
    r = chat.say("v001", "帮助", msg_id="crash")
    assert r.outcome == "error" and "处理出错" in r.reply
    assert chat.state() == before
    with Session(chat.app.engine) as s:
        row = s.get(InboxMessage, "crash")
        assert row is not None and (row.status, row.outcome, row.reason) == ("done", "error", "RuntimeError")
