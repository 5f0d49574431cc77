"""行政败诉风险 in three answers: 是 only for a suit, reconsideration or petition against the
government or its decision; 疑似 when a suit is threatened and it is unclear against whom; 否 for
disputes between private parties. Through the parser, and through chat (receipt, 改)."""

from __future__ import annotations

import pytest

from handlers.intake.risk import litigation_kind
from handlers.intake.text import clean
from models.vocabulary import Litigation
from tests.conftest import Chat

YES, SUSPECTED, NO = Litigation.YES, Litigation.SUSPECTED, Litigation.NO


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # 否: between workers and a company, neighbours, relatives, a shop and its customers
        ("装修公司拖欠6名工人工资,工人说不给就去劳动仲裁", NO),
        ("邻居因排水沟的事说要去法院起诉他", NO),
        ("两兄弟为老宅分家吵翻了,老大说要起诉老二", NO),
        ("开发商延期交房一年多,业主准备集体诉讼", NO),
        ("奶茶店辞退怀孕店员不给补偿,店员已申请劳动仲裁", NO),
        ("保险公司赔偿谈不拢,家属说下个月就去法院起诉", NO),
        ("村口路灯坏了,请尽快维修", NO),
        # 是: against a government body or its decision
        ("村民对镇政府的征地补偿决定不服,已申请行政复议", YES),
        ("宅基地审批卡了两年,当事人扬言要告镇政府", YES),
        ("对街道的拆除通知不服,准备向法院起诉", YES),
        ("资规局下达责令整改通知,当事人不服准备起诉", YES),
        ("补偿没谈拢,他说要去北京上访", YES),
        ("拆迁补偿标准太低,村民扬言打官司", YES),
        ("乡里评估有行政败诉风险", YES),
        # 疑似: a threat with no target, or a private dispute where a government act is also contested
        ("当事人情绪激动,扬言要起诉", SUSPECTED),
        ("家长们准备一起去法院告", SUSPECTED),
        ("找开发商找拆迁指挥部都推,拆迁户说要去打官司", SUSPECTED),
        # negated or withdrawn: 否 whatever the target
        ("当事人表示不会起诉镇政府", NO),
        ("对确权结果申请的行政复议,经调解已撤回", NO),
        # the later clause wins after a withdrawal
        ("已撤诉,但仍扬言上访", YES),
        # the village committee is not the government: 疑似, unless a government act is contested
        ("村民为宅基地四至的事扬言要去告村委会", SUSPECTED),
        ("征地补偿款分配不公,村民说要告村委", YES),
        # a bureau named as the one sued; "does not rule out" is no negation
        ("执法局贴了拆除通知,户主说拆他家就去告执法局", YES),
        ("户主说不排除起诉乡政府", YES),
        # the 告 of 报告, 通告, 转告 is no suit
        ("村里已报告镇政府,请派人来看看", NO),
        ("请村书记把情况转告街道", NO),
        # a withdrawal refused or not made keeps the suit live; a petitioner who says he will not go is no risk
        ("当事人拒不撤回行政复议申请", YES),
        ("对处罚决定起诉后至今未撤诉", YES),
        ("原先说要信访的 今天说不去了", NO),
    ],
)
def test_the_three_answers(text: str, expected: Litigation) -> None:
    assert litigation_kind(clean(text)) is expected


def test_the_flags_are_never_both_set() -> None:
    assert [k.flags for k in Litigation] == [(True, False), (False, True), (False, False)]
    assert all(Litigation.of(*k.flags) is k for k in Litigation)


def test_a_suspected_risk_is_said_in_the_receipt_and_stored(chat: Chat) -> None:
    r = chat.say("v001", "上报 上洋村村民与人发生纠纷,情绪激动,扬言要起诉")
    assert "⚠ 疑似行政败诉风险" in r.reply.splitlines()[1]
    issue = chat.issue(1)
    assert (issue.litigation_risk, issue.litigation_suspected) == (False, True)


def test_a_private_suit_is_no_flag_in_the_receipt(chat: Chat) -> None:
    r = chat.say("v001", "上报 上洋村村民反映厂里老板拖欠工资,工人准备申请劳动仲裁")
    assert "败诉风险" not in r.reply
    issue = chat.issue(1)
    assert (issue.litigation_risk, issue.litigation_suspected) == (False, False)


@pytest.mark.parametrize(
    ("word", "flags", "shown"),
    [
        ("疑似", (False, True), "⚠ 疑似行政败诉风险"),
        ("是", (True, False), "⚠ 行政败诉风险"),
        ("否", (False, False), None),
    ],
)
def test_改_sets_each_answer_as_one_event(chat: Chat, word: str, flags: tuple[bool, bool], shown: str | None) -> None:
    chat.say("v001", "上报 上洋村村民与人发生纠纷,情绪激动,扬言要起诉")  # 疑似 to start with
    if word == "疑似":
        chat.say("v001", "改 #1 败诉风险=否")
    r = chat.say("v001", f"改 #1 败诉风险={word}")
    issue = chat.issue(1)
    assert (issue.litigation_risk, issue.litigation_suspected) == flags
    if shown:
        assert shown in r.reply and (word != "是" or "疑似" not in r.reply)
    else:
        assert "败诉风险" not in r.reply


@pytest.mark.parametrize(
    ("opinion", "flags", "said"),
    [
        ("经核实无行政败诉风险,村里调解即可", (False, False), "已排除行政败诉风险"),
        ("属历史遗留 有行政败诉风险 风险:高", (True, False), "⚠ 行政败诉风险"),
        ("属历史遗留,需区里协调", (False, True), "⚠ 疑似行政败诉风险"),
    ],
)
def test_a_研判_that_says_there_is_no_risk_clears_the_flag(
    chat: Chat, opinion: str, flags: tuple[bool, bool], said: str
) -> None:
    chat.say("v001", "上报 上洋村村民与人发生纠纷,情绪激动,扬言要起诉")  # 疑似
    chat.say("v001", "上报 #1 村里无法协调")
    r = chat.say("t101", f"研判 #1 {opinion}")
    issue = chat.issue(1)
    assert r.outcome == "ok" and (issue.litigation_risk, issue.litigation_suspected) == flags
    assert said in r.reply
    if flags == (False, False):
        assert "无行政败诉风险" in issue.opinion  # the reviewer's words are kept as written
