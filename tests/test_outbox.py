"""The one outbox writer (models/outbox.py), and what DingTalk received from it: replies through
the message's session webhook, notices in other conversations, one-to-one where a unit has no
group, and the chat harness failing loudly when a reply never arrives."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from models import outbox
from models.clock import SHANGHAI
from models.outbox import Outbox
from models.tables import OutboxMessage
from tests.conftest import Chat

SUBMISSION = "上报 上洋村村民李某反映宅基地审批提交8个月仍未批复,当事人扬言要去区里上访"
NOW = datetime(2020, 3, 2, 9, 0, tzinfo=SHANGHAI)


def test_every_key_family_keeps_its_format() -> None:
    # These strings are the at-most-once promise of rows already in a database: never change them.
    assert outbox.reply_key("msg1") == "reply:msg1"
    assert outbox.group_key(outbox.notice_key("notice", "msg2"), "cid-huayuan") == "notice:msg2:cid-huayuan"
    assert outbox.group_key(outbox.notice_key("origin", "msg7"), "cid-shangyang") == "origin:msg7:cid-shangyang"
    assert outbox.users_key(outbox.notice_key("notice", "msg3")) == "notice:msg3:users"
    digest = outbox.group_key(outbox.job_key("weekly_digest", date(2020, 3, 9)), "cid-hangbu")
    assert digest == "sched:weekly_digest:2020-03-09:cid-hangbu"
    ladder = outbox.job_key("overdue_ladder", date(2020, 3, 4), "overdue", "unit7", "1-2")
    assert ladder == "sched:overdue_ladder:2020-03-04:overdue:unit7:1-2"
    assert outbox.person_key(ladder, "t001") == "sched:overdue_ladder:2020-03-04:overdue:unit7:1-2:user:t001"
    assert outbox.forced_key("k", NOW) == "k:force:2020-03-02T09:00:00+08:00"


def test_mentions_become_staff_ids_only_for_people_mentioned() -> None:
    names = {"t101": "王五", "d001": "赵六"}
    assert outbox.mentions("@王五 请研判。@赵六 知悉", ["t101"], names) == "@t101 请研判。@赵六 知悉"
    assert outbox.mentions("@王五", ["x"], names) == "@王五"  # nobody known by that id: left as written


def test_a_key_is_written_once(chat: Chat) -> None:
    with Session(chat.app.engine) as s, s.begin():
        out = Outbox(s, NOW)
        assert out.to_group("k1", "cid-district", "t", "first", ["d001", "d001"]) is True
        assert out.to_group("k1", "cid-district", "t", "second") is False
        assert out.to_users("k2", ["d001", "d001"], "t", "one to one") is True
        assert out.to_users("k3", [], "t", "nobody") is False
        assert [(x.key, x.target, x.at) for x in out.sent] == [
            ("k1", "cid-district", ("d001",)),
            ("k2", "user:d001", ()),
        ]
        rows = list(s.execute(select(OutboxMessage.key, OutboxMessage.text).order_by(OutboxMessage.id)))
        assert [tuple(r) for r in rows] == [("k1", "first"), ("k2", "one to one")]
        forced = Outbox(s, NOW, force=True)
        assert forced.to_group("k1", "cid-district", "t", "again") is True
        assert forced.sent[0].key == "k1:force:2020-03-02T09:00:00+08:00"
        limited = Outbox(s, NOW, groups=frozenset({"cid-hangbu"}))
        assert limited.to_group("k4", "cid-district", "t", "filtered out") is False


def test_a_unit_with_groups_hears_there_and_one_without_hears_one_to_one(chat: Chat) -> None:
    directory = chat.app.dispatcher.directory
    huayuan, xincun = directory.resolve("花园").id, directory.resolve("航埠镇/新村").id
    with Session(chat.app.engine) as s:
        groups = outbox.to_unit(s, "notice:m1", unit_id=huayuan, title="t", text="x", people=["t101"], created_at=NOW)
        assert [(r["key"], r["kind"], r["at_user_ids"]) for r in groups] == [
            ("notice:m1:cid-huayuan", "group", ["t101"])
        ]
        # Its only group is where the message came from: nobody else to tell, and no fallback.
        skipped = outbox.to_unit(
            s, "notice:m1", unit_id=huayuan, title="t", text="x", people=["t101"], created_at=NOW,
            skip=lambda c: c == "cid-huayuan",
        )  # fmt: skip
        assert skipped == []
        direct = outbox.to_unit(s, "notice:m1", unit_id=xincun, title="t", text="x", people=["v004"], created_at=NOW)
        assert [(r["key"], r["kind"], r["user_ids"], r["at_user_ids"]) for r in direct] == [
            ("notice:m1:users", "user", ["v004"], ["v004"])
        ]
        each = outbox.to_unit(
            s, "sched:x", unit_id=xincun, title="t", text="all", people=["v004"], created_at=NOW,
            each=lambda p: f"yours, {p}",
        )  # fmt: skip
        assert [(r["key"], r["text"], r["at_user_ids"]) for r in each] == [("sched:x:user:v004", "yours, v004", [])]
        assert outbox.to_unit(s, "n", unit_id=xincun, title="t", text="x", people=[], created_at=NOW) == []


def test_the_reply_is_what_dingtalk_received_through_the_session_webhook(chat: Chat) -> None:
    chat.say("d001", "上报 全区多个小区物业费纠纷集中爆发,业主情绪激动")
    r = chat.say("d001", "交办 #1 区自然资源局 限10个工作日", mentions=("p001",))
    assert (r.sent.channel, r.sent.conversation_id) == ("session", "cid-district")
    assert r.sent.at_user_ids == ["p001"] and "@p001" in r.sent.text  # DingTalk renders a mention from the id
    assert "@钱七" in r.reply and "@p001" not in r.reply  # ... and shows the name
    with Session(chat.app.engine) as s:
        (stored,) = s.execute(select(OutboxMessage.text).where(OutboxMessage.key == "reply:msg2")).one()
    assert "@钱七" in stored  # the row keeps names; the mapping happens on the way out


def test_a_redelivered_message_reaches_dingtalk_once(chat: Chat) -> None:
    first = chat.say("v001", SUBMISSION, msg_id="same")
    again = chat.say("v001", SUBMISSION, msg_id="same")
    assert (again.outcome, again.reply, again.sent) == ("duplicate", first.reply, first.sent)
    assert len([s for s in chat.received if s.webhook == first.sent.webhook]) == 1


def test_a_reply_that_never_reaches_dingtalk_fails_say(chat: Chat) -> None:
    chat.dingtalk.emulator.faults.fail_next["/robot/sendBySession"] = 1
    with pytest.raises(AssertionError, match=r"reply to lost reached DingTalk 0 times.*HTTP 503"):
        chat.say("v001", "帮助", msg_id="lost")
    with Session(chat.app.engine) as s:
        pending = s.execute(select(func.count()).where(OutboxMessage.status == "pending")).scalar()
    assert pending == 1  # kept, to be retried: the harness did not hide the failure


def test_an_escalation_notice_reaches_the_upper_group(chat: Chat) -> None:
    chat.say("v001", SUBMISSION)
    r = chat.say("v001", "上报 #1 村里无法协调,需街道出面")
    # 王五 is not in the village group: the reply names him plainly, the township group hears it,
    # and he is told one to one (the OpenAPI group send cannot @ him).
    assert r.sent.conversation_id == "cid-shangyang" and r.at == () and "王五 请研判" in r.reply
    assert "@" not in r.reply
    [notice] = chat.received_in("cid-huayuan")
    assert notice.channel == "group" and notice.title == "两难助手"
    [direct] = chat.received_by("t101")
    assert direct.text == notice.text and direct.at_user_ids == []
    assert notice.text.startswith("新上报 #1【花园街道·上洋村】") and "上报理由: 村里无法协调" in notice.text
    chat.say("t101", "研判 #1 需区自然资源局认定 风险:高")
    chat.say("t101", "上报 #1")
    [district] = chat.received_in("cid-district")
    assert district.text.startswith("新上报 #1") and "风险 高" in district.text
    assert len(chat.received_in("cid-huayuan")) == 3  # the notice, then two replies in the township's group


def test_a_return_to_a_village_without_a_group_reaches_its_staff_one_to_one(chat: Chat) -> None:
    r = chat.say("v004", "上报 航埠镇新村村民反映拖欠工资23人,涉及金额40万元")
    assert r.sent.conversation_id == "cid-district"  # 新村 has no group of its own
    chat.say("v004", "上报 #1 村里协调不了")
    [township] = chat.received_in("cid-hangbu")
    assert "新上报 #1" in township.text
    chat.say("t102", "退回 #1 请先核实人数", cid="cid-hangbu")
    [direct] = chat.received_by("v004")
    assert (direct.channel, direct.user_ids) == ("user", ["v004"])
    assert direct.text.startswith("#1 已退回新村:请先核实人数")


def test_a_notice_sent_through_the_openapi_names_the_lead(chat: Chat) -> None:
    chat.say("v001", SUBMISSION)
    chat.say("v001", "上报 #1 村里无法协调")
    [notice] = chat.received_in("cid-huayuan")
    assert "@t101" not in notice.text  # DINGTALK.md: only the session webhook and custom robots carry at
    assert "@王五" not in notice.text and "王五 请研判" in notice.text  # a plain name: no @ that pings nobody
    assert [s.channel for s in chat.received_by("t101")] == ["user"]  # he is told one to one instead
