"""Intake through the dispatcher: what the receipt says it understood, near-duplicate hints,
pictures attaching to a recent post, and 改 corrections recorded as events."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from handlers.incoming import AtUser, Incoming
from models.clock import SHANGHAI
from models.tables import IssueEvent, PhotoDownload
from models.verify import verify_chains
from tests.conftest import BOT_ID, Chat, Heard

POST = "上报 上洋村村民李某反映宅基地审批8个月未批复,扬言要申请行政复议,要求月底前答复,联系电话13812345678"


def events(chat: Chat, issue: int, kind: str) -> list[IssueEvent]:
    with Session(chat.app.engine) as s:
        rows = s.exec(select(IssueEvent).where(IssueEvent.issue_id == issue, IssueEvent.kind == kind))
        return list(rows)


def send_pictures(
    chat: Chat, person: str, codes: tuple[str, ...], *, text: str = "", msgtype: str = "picture", msg_id: str = ""
) -> Heard:
    chat.clock.at = chat.at
    msg = Incoming(
        msg_id=msg_id or f"pic{next(chat.ids)}",
        conversation_id=chat.group_of(person),
        sender_staff_id=person,
        sender_nick=person,
        text=text,
        create_at=chat.at,
        at_users=(AtUser(dingtalk_id=BOT_ID),),
        bot_user_id=BOT_ID,
        msgtype=msgtype,
        pictures=codes,
    )
    return chat.send(msg)


def test_the_receipt_shows_what_was_understood(chat: Chat) -> None:
    r = chat.say("v001", POST)
    lines = r.reply.splitlines()
    assert lines[0] == "已登记 #1【花园街道·上洋村】宅基地审批8个月未批复,扬言要申请行政复议,要求月底前答复"
    assert lines[1] == "类别 宅基地与农房 · ⚠ 行政败诉风险 · 电话 138****5678 · 要求 3月31日(周二)前"
    assert lines[2] == "有误请回复「改 #1 村=… 类别=…」。"
    assert "13812345678" not in r.reply
    issue = chat.issue(1)
    assert (issue.category, issue.litigation_risk, str(issue.requested_deadline)) == (
        "宅基地与农房",
        True,
        "2020-03-31",
    )
    assert issue.deadline is None  # only 交办 sets the official deadline


def test_an_ambiguous_village_is_asked_not_guessed_and_改_settles_it(chat: Chat) -> None:
    r = chat.say("d001", "上报 新村村民反映村口垃圾中转站臭气熏天,要求搬迁")
    assert "「新村」有重名(航埠镇/新村、石梁镇/新村),请回复「改 #1 村=航埠镇/新村」指明。" in r.reply
    assert (chat.issue(1).township_id, chat.issue(1).village_id) == (None, None)
    r = chat.say("d001", "改 #1 村=石梁镇/新村")
    assert r.outcome == "ok" and r.reply.startswith("#1 已更正:【石梁镇·新村】")
    directory = chat.app.dispatcher.directory
    village = directory.resolve("石梁镇/新村")
    assert (chat.issue(1).township_id, chat.issue(1).village_id) == (village.parent_id, village.id)  # type: ignore[union-attr]
    r = chat.say("d001", "改 #1 村=新村")
    assert (r.outcome, r.reply) == ("refused", "「新村」有重名,请写明是哪一个:航埠镇/新村、石梁镇/新村。")


def test_a_similar_post_from_the_same_village_within_30_days_is_pointed_out(chat: Chat) -> None:
    chat.say("v001", "上报 上洋村反映：村里的排水沟堵了，一下雨就淹到村民家里，希望尽快派人来疏通")
    chat.say("v003", "上报 坊门街社区：3幢楼道的水管爆了，整栋楼停水")
    r = chat.say(
        "v002", "上报 上洋村排水沟又堵了，昨晚下雨好几户进水了，上次反映的还没人来", at=chat.at + timedelta(days=3)
    )
    assert r.reply.startswith("已登记 #3") and "(可能与 #1 重复 — 如是请回复「合并 #1 #3」)" in r.reply
    r = chat.say("v002", "上报 上洋村反映村里的低保户钱某的低保金被停发了三个月", at=chat.at + timedelta(days=1))
    assert "重复" not in r.reply  # the same village, another matter
    r = chat.say("v001", "上报 上洋村排水沟又堵了，下雨好几户进水了，还是没人来疏通", at=chat.at + timedelta(days=31))
    assert "可能与 #1" not in r.reply and "可能与 #3" not in r.reply  # #1 is older than 30 days now
    assert r.reply.startswith("已登记 #5")


def test_a_picture_within_10_minutes_attaches_to_the_senders_post(chat: Chat) -> None:
    chat.say("v001", POST)
    chat.at += timedelta(minutes=9)
    r = send_pictures(chat, "v001", ("code-a", "code-b"), msg_id="p1")
    assert (r.outcome, r.reply, r.issue_id) == ("ok", "已将 2 张照片附到 #1。", 1)
    [picture] = events(chat, 1, "picture")
    assert (picture.data, picture.actor_id, picture.msg_id) == (
        {"codes": ["code-a", "code-b"], "after_seq": 1},
        "v001",
        "p1",
    )
    again = chat.process("p1")  # a redelivery changes nothing and answers the same
    assert (again.outcome, again.reply) == ("duplicate", r.reply) and len(events(chat, 1, "picture")) == 1
    assert "照片 2 张" in chat.say("v001", "查 #1").reply
    assert verify_chains(Session(chat.app.engine)) == []


def test_a_late_or_foreign_picture_is_refused_and_changes_nothing(chat: Chat) -> None:
    chat.say("v001", POST)
    chat.at += timedelta(minutes=11)
    before = chat.state()
    r = send_pictures(chat, "v001", ("late",))
    assert r.outcome == "refused" and r.reply.startswith("照片需在「上报」或「反馈」后10分钟内由本人发送")
    chat.at -= timedelta(minutes=5)
    r = send_pictures(chat, "v002", ("someone-else",))  # 李四 posted nothing
    assert r.outcome == "refused" and chat.state() == before
    r = send_pictures(chat, "v001", ())
    assert (r.outcome, r.reply) == ("refused", "没有收到图片,请重新发送。") and chat.state() == before


def test_pictures_follow_feedback_and_travel_inside_a_rich_text(chat: Chat) -> None:
    chat.say("v001", POST)
    chat.say("v002", "上报 上洋村村口路灯坏了一个多月,晚上出行不便")
    chat.at += timedelta(hours=2)
    assert chat.say("v001", "反馈 #2 已联系供电所").outcome == "ok"
    chat.at += timedelta(minutes=1)
    r = send_pictures(chat, "v001", ("after-feedback",))
    assert r.reply == "已将 1 张照片附到 #2。"  # the feedback is newer than 张三's own 上报 #1
    r = send_pictures(chat, "v001", ("inline",), text="反馈 #1 已到现场核实", msgtype="richText")
    assert r.outcome == "ok" and [e.data["codes"] for e in events(chat, 1, "picture")] == [["inline"]]
    r = send_pictures(chat, "v001", ("first",), text="上报 上洋村一处山塘坝体渗水,汛期前必须处理", msgtype="richText")
    assert r.reply.startswith("已登记 #3") and [e.data["codes"] for e in events(chat, 3, "picture")] == [["first"]]
    r = send_pictures(chat, "v001", ("alone",), text=" ", msgtype="richText")  # a rich text of pictures alone
    assert r.reply == "已将 1 张照片附到 #3。"


def test_改_by_the_reporter_or_a_lead_is_an_event(chat: Chat) -> None:
    chat.say("v001", POST)
    r = chat.say("v001", "改 #1 类别=劳资 败诉风险=否 期限=无")
    assert (
        r.outcome == "ok"
        and r.reply
        == "#1 已更正:【花园街道·上洋村】宅基地审批8个月未批复,扬言要申请行政复议,要求月底前答复\n"
        "类别 劳资纠纷 · 电话 138****5678"
    )
    issue = chat.issue(1)
    assert (issue.category, issue.litigation_risk, issue.requested_deadline) == ("劳资纠纷", False, None)
    [amended] = events(chat, 1, "amended")
    assert amended.data == {
        "fields": {"category": "劳资纠纷", "litigation_risk": False, "requested_deadline": None},
        "text": "类别=劳资 败诉风险=否 期限=无",
    }
    r = chat.say("v002", "更正 #1 标题=宅基地审批拖延 电话13812345678 期限=本周五")  # 李四 staffs the village: a lead
    assert r.outcome == "ok" and chat.issue(1).title == "宅基地审批拖延 电话138****5678"
    assert str(chat.issue(1).requested_deadline) == "2020-03-06"
    assert verify_chains(Session(chat.app.engine)) == []


def test_改_refusals_change_nothing(chat: Chat) -> None:
    chat.say("v001", POST)
    chat.say("t001", "上报 东港社区居民反映小区门口路灯坏了一个多月")
    before = chat.state()
    cases = {
        ("t101", "改 #1 类别=劳资纠纷"): "只有#1的上报人或当前层级领导可以更正。",
        (
            "v001",
            "改 #1",
        ): "请写明要改的项和新值,如「改 #12 村=上洋村 类别=劳资纠纷」(可改:村、乡镇、类别、标题、败诉风险、期限)。",
        (
            "v001",
            "改 #1 颜色=红",
        ): "请写明要改的项和新值,如「改 #12 村=上洋村 类别=劳资纠纷」(可改:村、乡镇、类别、标题、败诉风险、期限)。",
        ("v001", "改 #1 类别="): "「类别」后请写新值,如「改 #12 村=上洋村 类别=劳资纠纷」。",
        (
            "v001",
            "改 #1 类别=治安",
        ): "类别请从以下选择:土地征迁、宅基地与农房、劳资纠纷、邻里与婚姻家庭、环境与生态、基础设施、"
        "社会保障与救助、企业与经营、行政执法、其他。",
        ("v001", "改 #1 类别=宅基地与农房"): "#1 的登记内容已是如此,无需更正。",
        ("v001", "改 #1 村=东港社区"): "#1 由上洋村办理,只能改为其范围内的地点;如需转交请「上报」或「退回」。",
        ("t001", "改 #2 村=浮石村"): "#2 由花园街道办理,只能改为其范围内的地点;如需转交请「上报」或「退回」。",
        ("v001", "改 #1 村=火星村"): "没有名为「火星村」的村(社区),请核对名称。",
        ("v001", "改 #1 败诉风险=也许"): "败诉风险请写「是」「否」或「疑似」,如「改 #12 败诉风险=疑似」。",
        ("v001", "改 #1 期限=下辈子"): "期限「下辈子」无法识别,请写成「3月31日」「本周五」「月底」或「3个工作日内」。",
        ("v001", "改 村=上洋村"): "请写明问题编号,如「改 #12 村=上洋村 类别=劳资纠纷」。",
    }
    for (person, text), reply in cases.items():
        r = chat.say(person, text)
        assert (r.outcome, r.reply) == ("refused", reply), text
    assert chat.state() == before
    r = chat.say("t001", "改 #2 村=亭川社区")  # within the township that handles it
    assert r.outcome == "ok" and r.reply.startswith("#2 已更正:【花园街道·亭川社区】")


def test_words_that_start_with_改_are_not_the_command(chat: Chat) -> None:
    r = chat.say("v001", "改厕工程做了一半施工队就走了,村民家里的厕所没法用")
    assert r.outcome == "ok" and r.reply.startswith("已登记 #1")
    r = chat.say("v001", "改造工程款拖欠了半年,农民工天天来村委会讨薪", at=datetime(2020, 3, 3, 9, tzinfo=SHANGHAI))
    assert r.reply.startswith("已登记 #2") and chat.issue(2).category == "劳资纠纷"


def test_feedback_says_how_a_photo_reaches_the_bot_and_pictures_are_queued_for_keeping(chat: Chat) -> None:
    chat.say("v001", POST)
    r = chat.say("v001", "反馈 #1 已约谈当事人")
    assert r.reply == "#1 已记录进展。现场照片请与文字一起发送(同一条消息内@我),或10分钟内在与我的单聊中发送。"
    assert "现场照片请在10分钟内发送" not in r.reply  # a picture alone in a group never reaches the bot
    send_pictures(chat, "v001", ("a", "b", "a"), text="反馈 #1 已到现场核实", msgtype="richText")
    with Session(chat.app.engine) as s:
        rows = list(s.exec(select(PhotoDownload).order_by(col(PhotoDownload.id))))
    (picture,) = events(chat, 1, "picture")
    assert [(p.issue_id, p.event_seq, p.code, p.status) for p in rows] == [
        (1, picture.seq, "a", "pending"),
        (1, picture.seq, "b", "pending"),
    ]
