"""统计 in chat (and the weekly digest) gives the §1 numbers as three short lines, 区级 / 乡镇 /
村; the report's exact paragraph stays one word away (统计 … 原文) and in `liandong report`."""

from __future__ import annotations

from datetime import datetime

from models.clock import SHANGHAI
from tests.conftest import Chat

PHONE_LINE_CHARS = 24  # about what a 390 px wide chat bubble holds before it wraps
TUESDAY = datetime(2020, 3, 3, 10, 0, tzinfo=SHANGHAI)


def walk(chat: Chat) -> None:
    n = chat.say("t101", "上报 花园街道某企业拖欠工资23人,老板失联", at=TUESDAY).issue_id
    chat.say("t101", f"上报 #{n}", at=TUESDAY)
    chat.say("d001", f"交办 #{n} 限5天", mentions=("p001",), at=TUESDAY)
    chat.say("p001", f"化解 #{n} 已协调解决", at=TUESDAY.replace(hour=15))
    chat.say("v001", "上报 上洋村路灯坏了一个月,晚上出行不便,请尽快修复", at=TUESDAY.replace(hour=16))


def test_统计_is_three_short_lines_and_原文_the_paragraph(chat: Chat) -> None:
    walk(chat)
    lines = chat.say("d001", "统计 2020", at=TUESDAY.replace(hour=17)).reply.splitlines()
    assert lines == [
        "【统计】2020年 · 柯城区",
        "区级 交办1 · 化解1(周二无会日 1/1)",
        "乡镇 提交1 · 办结0",
        "村级 排摸1 · 办结0",
        "报告原文请回复「统计 2020 原文」",
    ]
    assert all(len(line) <= PHONE_LINE_CHARS for line in lines)
    raw = chat.say("d001", "统计 2020 原文", at=TUESDAY.replace(hour=17)).reply.splitlines()
    assert raw == [
        "【统计】2020年 · 柯城区",
        '区级层面累计交办"两难"问题1件,已化解1件。其中,"周二无会日"办理件1件,已化解1件;'
        "平时交办0件,已化解0件。乡镇(街道)层面累计提交1件,办结0件;村(社区)层面累计排摸1件,办结0件。",
    ]
    assert chat.say("d001", "统计 原文", at=TUESDAY.replace(hour=17)).reply.splitlines()[0] == "【统计】2020年 · 柯城区"
    assert "报告原文请回复「统计 原文」" in chat.say("d001", "统计", at=TUESDAY.replace(hour=17)).reply
    bad = chat.say("d001", "统计 明年 原文", at=TUESDAY.replace(hour=17))
    assert (
        bad.outcome == "refused"
        and bad.reply == "无法识别统计时段「明年」,可用:本周/本月/本年/2020/2020-01-01~2020-06-30。"
    )
