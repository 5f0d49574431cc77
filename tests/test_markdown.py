"""The one renderer (models/markdown.py) on every reply kind, against DingTalk's markdown rules:
a line break has two spaces before its `\\n`, a star is escaped (never emphasis), and no glyph
needs a colour-emoji font."""

from __future__ import annotations

import re

from models.markdown import render_markdown
from tests.conftest import Chat

EMOJI = re.compile("[\u2600-\u27bf\u2b00-\u2bff\U0001f000-\U0001faff]")
ALLOWED = {"⚠"}  # U+26A0 is in Segoe UI Symbol (Windows 7 on) and in CJK system fonts


def follows_dingtalk_rules(text: str) -> list[str]:
    problems = []
    if re.search(r"(?<!  )\n(?!\n)", text.replace("\n\n", "")):
        problems.append("a line break without two spaces before it")
    if re.search(r"(?<!\\)\*", text):
        problems.append("an unescaped star")
    if any(ch not in ALLOWED for ch in EMOJI.findall(text)):
        problems.append("an emoji")
    return problems


def test_the_renderer() -> None:
    assert render_markdown("已登记 #1\n电话 138****5678、139****4321 ✅") == (
        "已登记 #1  \n电话 138\\*\\*\\*\\*5678、139\\*\\*\\*\\*4321 √"
    )
    assert render_markdown("一\n\n二\n") == "一\n\n二"  # a paragraph stays a paragraph
    once = render_markdown("a\nb *c*")
    assert render_markdown(once) == once  # applied twice, the same


def test_every_reply_kind_reaches_dingtalk_as_dingtalk_markdown(chat: Chat) -> None:
    says = [
        ("v001", "帮助"),
        ("v001", "上报 上洋村村民李某反映宅基地审批8个月未批复,联系电话13812345678、13987654321"),
        ("v001", "改 #1 类别=宅基地与农房"),
        ("v001", "查 #1"),
        ("v001", "列表"),
        ("v001", "上报 #1 村里无法协调"),
        ("t101", "研判 #1 属历史遗留 风险:高"),
        ("t101", "上报 #1"),
        ("d001", "交办 #1 区自然资源局 限10个工作日"),
        ("p001", "反馈 #1 已约谈当事人"),
        ("p001", "延期 #1 3个工作日 等待鉴定"),
        ("d001", "同意延期 #1"),
        ("p001", "延期 #1 2个工作日 等待复核"),
        ("d001", "不同意延期 #1 请按期办结"),
        ("d002", "督办 #1"),
        ("p001", "化解 #1 已补办手续"),
        ("v001", "不满意 #1 证还没发下来"),
        ("d001", "统计 2020"),
        ("v001", "退回"),  # a refusal
    ]
    for person, text in says:
        chat.say(person, text, mentions=("p001",) if text.startswith("交办") else ())
    assert len(chat.received) > len(says)
    for sent in chat.received:
        assert follows_dingtalk_rules(sent.text) == [], sent
