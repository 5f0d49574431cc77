"""The whole life of issues through the dispatcher, asserting on what lands in the outbox."""

from __future__ import annotations

from datetime import datetime, timedelta

from models.clock import SHANGHAI
from tests.conftest import Chat

SUBMISSION = "上报 上洋村村民李某反映宅基地审批提交8个月仍未批复,当事人扬言要去区里上访,联系电话13812345678"


def test_full_life_of_an_issue(chat: Chat) -> None:
    r = chat.say("v001", SUBMISSION)
    assert r.outcome == "ok" and r.reply.startswith("已登记 #1【花园街道·上洋村】宅基地审批")
    assert "138****5678" in r.reply and "13812345678" not in r.reply
    assert r.at == ()  # village level: nobody else must act yet
    issue = chat.issue(1)
    assert (issue.level, issue.status, issue.litigation_risk) == ("village", "submitted", True)

    r = chat.say("v001", "上报 #1 村里无法协调,需街道出面")
    # 王五 is not in the village group: named plainly there, asked in the township's group.
    assert r.reply.startswith("#1 已上报至花园街道。王五 请研判") and r.at == ()
    notice = [o for o in chat.outbox() if o.key == "notice:msg2:cid-huayuan"]
    assert len(notice) == 1 and notice[0].at_user_ids == ["t101"] and "村里无法协调" in notice[0].text
    assert (chat.issue(1).level, chat.issue(1).unit_id) == (
        "township",
        chat.app.dispatcher.directory.resolve("花园").id,
    )

    r = chat.say("t101", "研判 #1 属历史遗留,需区自然资源局认定 风险:高")
    assert r.outcome == "ok" and chat.issue(1).status == "reviewed" and chat.issue(1).risk == "高"

    r = chat.say("t101", "上报 #1")
    # Only the duty lead (duty_leads: in the org file) is asked, in the district group.
    assert r.reply.startswith("#1 已上报至柯城区") and r.at == () and "赵六 请交办" in r.reply
    notices = [o for o in chat.outbox() if o.key.startswith("notice:msg4")]
    assert [(o.conversation_id, o.at_user_ids) for o in notices] == [("cid-district", ["d001"])]

    tuesday = datetime(2020, 3, 3, 10, 0, tzinfo=SHANGHAI)
    r = chat.say("d001", "交办 #1 区自然资源局 限10个工作日", mentions=("p001",), at=tuesday)
    assert r.reply == "#1 已交办 @钱七 · 区自然资源局 · 截止 3月17日(周二) · 周二无会日办理件。" and r.at == ("p001",)
    issue = chat.issue(1)
    assert (issue.status, issue.owner_id, str(issue.deadline), issue.tuesday) == (
        "assigned",
        "p001",
        "2020-03-17",
        False,
    )

    r = chat.say("p001", "反馈 #1 已约谈当事人,正在补材料", at=tuesday + timedelta(days=1))
    assert r.outcome == "ok" and chat.issue(1).status == "assigned"

    r = chat.say("p001", "化解 #1 已补办手续,审批通过", at=tuesday + timedelta(days=2))
    # 张三 is not in the district group: named plainly, and asked in his own village group.
    assert r.reply.startswith("#1【已化解】") and r.at == () and "张三 请回访" in r.reply
    assert "不满意 #1" in r.reply
    origin = [o for o in chat.outbox() if o.key.startswith("origin:")]
    assert [(o.conversation_id, o.at_user_ids) for o in origin] == [("cid-shangyang", ["v001"])]

    r = chat.say("v001", "不满意 #1 证还没发下来", at=tuesday + timedelta(days=5))
    # 钱七 (a district department liaison) is not in the village group: told one to one.
    assert r.outcome == "ok" and r.at == () and "钱七 请跟进" in r.reply and "@" not in r.reply
    [direct] = [m for m in chat.received_by("p001") if "请跟进" in m.text]
    assert direct.text == r.sent.text and direct.at_user_ids == []
    assert chat.issue(1).status == "assigned" and chat.issue(1).resolved_at is None

    r = chat.say("p001", "办结 #1 证已发放", at=tuesday + timedelta(days=6))
    assert r.outcome == "ok" and chat.issue(1).status == "resolved"
    # Every message got exactly one reply, and nothing else went to the sender's own group twice.
    replies = [o for o in chat.outbox() if o.kind == "reply"]
    assert len(replies) == 9 == len({o.key for o in replies})


def test_reporter_revisit_window_is_seven_days(chat: Chat) -> None:
    chat.say("v001", SUBMISSION)
    chat.say("v001", "办结 #1 已协调解决")
    late = chat.at + timedelta(days=8)
    r = chat.say("v001", "不满意 #1 还是不行", at=late)
    assert r.outcome == "refused" and "超过7天" in r.reply
    assert chat.issue(1).status == "resolved"


def test_return_moves_down_one_level(chat: Chat) -> None:
    chat.say("v001", SUBMISSION)
    chat.say("v001", "上报 #1")
    r = chat.say("t101", "退回 #1 请先核实当事人诉求")
    assert r.outcome == "ok" and r.reply.startswith("#1 已退回上洋村")
    assert r.at == ()  # the village's staff are not in the township group: their own group is asked
    [notice] = [o for o in chat.outbox() if o.key == "notice:msg3:cid-shangyang"]
    assert notice.at_user_ids == ["v001", "v002"]
    issue = chat.issue(1)
    assert (issue.level, issue.status) == ("village", "submitted")
    r = chat.say("v001", "退回 #1 再退")
    assert r.outcome == "refused" and "最基层" in r.reply


def test_merge_folds_duplicate_and_its_reporter_hears_the_result(chat: Chat) -> None:
    chat.say("v001", SUBMISSION)
    chat.say("v002", "上报 上洋村李某宅基地审批一直没批,情绪激动")
    r = chat.say("v001", "合并 #1 #2")
    assert r.outcome == "ok" and "#2 已并入 #1" in r.reply and r.at == ("v002",)
    dup = chat.issue(2)
    assert (dup.status, dup.duplicate_of) == ("closed", 1)
    r = chat.say("v001", "反馈 #2 再反馈")
    assert r.outcome == "refused" and "已作为重复件合并到 #1" in r.reply
    r = chat.say("v001", "办结 #1 已解决")
    assert r.at == ("v002",)  # the reporter of #1 acted himself; the duplicate's reporter is told
    r = chat.say("v002", "不满意 #1 没解决")
    assert r.outcome == "ok"  # a follower may answer the revisit too


def _assigned_on_a_monday(chat: Chat) -> None:
    """#1 reported in the village, escalated to the district and 交办 to 钱七 (p001) by 赵六 on
    Monday 2020-03-02, due in 5 working days (2020-03-09)."""
    chat.say("v001", SUBMISSION)
    chat.say("v001", "上报 #1")
    chat.say("t101", "上报 #1")
    monday = datetime(2020, 3, 2, 9, 0, tzinfo=SHANGHAI)
    chat.say("d001", "交办 #1 限5个工作日", mentions=("p001",), at=monday)


def test_extension_request_and_approval(chat: Chat) -> None:
    _assigned_on_a_monday(chat)
    assert str(chat.issue(1).deadline) == "2020-03-09"
    r = chat.say("d001", "延期 #1 3个工作日 等鉴定")
    assert r.outcome == "refused" and "包案人" in r.reply
    r = chat.say("p001", "延期 #1 3个工作日 等待鉴定结果")
    assert r.outcome == "ok" and r.at == ("d001",)  # the lead who assigned it, not every district lead
    assert chat.issue(1).extension_days == 3 and str(chat.issue(1).deadline) == "2020-03-09"
    r = chat.say("p001", "同意延期 #1")
    assert r.outcome == "refused"
    r = chat.say("d002", "同意延期 #1")
    assert r.reply == "#1 已同意延期,新截止 3月12日(周四)。@钱七" and r.at == ("p001",)
    assert str(chat.issue(1).deadline) == "2020-03-12" and chat.issue(1).extension_days is None
    r = chat.say("d002", "同意延期 #1")
    assert r.outcome == "refused" and "没有待审批" in r.reply


def test_extension_refused_with_a_reason_keeps_the_deadline_and_tells_the_requester(chat: Chat) -> None:
    _assigned_on_a_monday(chat)
    r = chat.say("d002", "不同意延期 #1 没有申请")
    assert r.outcome == "refused" and r.reply == "#1 没有待审批的延期申请。"
    chat.say("p001", "延期 #1 3个工作日 等待鉴定结果")
    r = chat.say("p001", "不同意延期 #1 算了")
    assert r.outcome == "refused" and r.reply.startswith("不同意延期需由区领导操作")
    r = chat.say("d002", "不同意延期 #1")
    assert r.outcome == "refused" and "不同意的理由" in r.reply and chat.issue(1).extension_days == 3
    r = chat.say("d002", "不同意延期 #1 鉴定结果已出,请按期办结。")
    assert r.reply == "#1 延期申请未获同意:鉴定结果已出,请按期办结。仍按原截止 3月9日(周一)。@钱七"
    assert r.at == ("p001",)  # the one who asked
    assert str(chat.issue(1).deadline) == "2020-03-09" and chat.issue(1).extension_days is None
    r = chat.say("d002", "同意延期 #1")
    assert r.outcome == "refused" and "没有待审批" in r.reply  # nothing left to approve
    r = chat.say("p001", "延期 #1 2个工作日 再等两天")  # the owner may ask again
    assert r.outcome == "ok" and chat.issue(1).extension_days == 2


def test_assignment_on_tuesday_or_tagged_is_a_tuesday_case(chat: Chat) -> None:
    for n in range(1, 4):
        chat.say("t101", f"上报 花园街道第{n}件征迁补偿纠纷,涉及多户村民")
        chat.say("t101", f"上报 #{n}")
    wednesday = datetime(2020, 3, 4, 9, tzinfo=SHANGHAI)
    chat.say("d001", "交办 #1 周二无会日", mentions=("d001",), at=wednesday)
    chat.say("d001", "交办 #2", mentions=("d002",), at=wednesday)
    chat.say("d001", "交办 #3", mentions=("d002",), at=wednesday - timedelta(days=1))
    assert [chat.issue(n).tuesday for n in (1, 2)] == [True, False]
    r = chat.say("d001", "统计 2020 原文")
    assert '"周二无会日"办理件2件' in r.reply and "平时交办1件" in r.reply


def test_supervise_reminds_the_owner(chat: Chat) -> None:
    chat.say("t101", "上报 花园街道某企业拖欠工资23人,老板失联")
    r = chat.say("t101", "督办 #1")
    assert r.outcome == "refused" and "尚未交办" in r.reply
    chat.say("t101", "交办 #1", mentions=("t001",))
    r = chat.say("d001", "督办 #1")
    # 王小明 is not in the district group: named plainly there and told one to one.
    assert r.outcome == "ok" and r.at == () and r.reply.startswith("【督办】王小明 #1")
    [direct] = chat.received_by("t001")
    assert direct.text.startswith("【督办】王小明 #1") and direct.at_user_ids == []


def test_duplicate_msg_id_changes_nothing_and_answers_the_same(chat: Chat) -> None:
    first = chat.say("v001", SUBMISSION, msg_id="dup-1")
    before = chat.state()
    outbox_before = len(chat.outbox())
    again = chat.say("v001", SUBMISSION, msg_id="dup-1")
    assert again.outcome == "duplicate" and again.reply == first.reply and "#1" in again.reply
    assert chat.state() == before and len(chat.outbox()) == outbox_before


def test_show_card_and_lists(chat: Chat) -> None:
    chat.say("v001", SUBMISSION)
    chat.say("v003", "上报 坊门街社区楼道堆物引发邻里纠纷,多次调解无果")
    card = chat.say("v001", "查 #1").reply
    assert card.splitlines()[0].startswith("#1【花园街道·上洋村】") and "138****5678" in card
    assert "13812345678" not in card
    assert chat.say("v001", "查 #2").reply == "#2 不在你的范围内。"
    assert chat.say("d001", "查 #2").outcome == "ok"
    listing = chat.say("v001", "列表 全部").reply
    assert "#1" in listing and "#2" not in listing
    assert "#1" in chat.say("t101", "列表 全部").reply and "#2" in chat.say("d001", "列表 全部").reply
    r = chat.say("v001", "列表 随便")
    assert r.outcome == "refused" and "列表可选" in r.reply


def test_a_resolution_in_the_same_moment_as_the_question_counts(chat: Chat) -> None:
    """化解 is judged "by now" while the period runs: now itself included."""
    chat.say("t101", "上报 花园街道征迁补偿纠纷,涉及多户村民")
    chat.say("t101", "上报 #1")
    chat.say("d001", "交办 #1", mentions=("p001",))
    chat.say("p001", "化解 #1 已协调解决")
    r = chat.say("d001", "统计 本年 原文")  # the same createAt as the resolution
    assert '区级层面累计交办"两难"问题1件,已化解1件。' in r.reply


def test_the_card_of_a_long_lived_case_fits_one_phone_screen(chat: Chat) -> None:
    chat.say("v001", SUBMISSION)
    for i in range(8):
        chat.say("v001", f"反馈 #1 第{i}次走访当事人")
    chat.say("v001", "交办 #1 限5天", mentions=("v002",))
    card = chat.say("v001", "查 #1").reply.splitlines()
    assert len(card) <= 8, card
    assert "包案 李四" in card[3] and "截止" in card[3]
    assert "交办" in card[-2] and card[-1] == "(共 10 条进程,完整时间线见看板)"
