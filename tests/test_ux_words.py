"""Words as the district uses them: 办结 below the district and 化解 at it, a failed 回访 named
so in timelines, a Tuesday 交办 said to be a 周二无会日办理件, and the district's notice of an
escalation carrying the township's 研判."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from bot.app import build
from bot.config import Settings
from bot.web import create_web_app
from models.clock import SHANGHAI, FrozenClock
from tests.conftest import Chat
from tests.web_support import org_with_tokens

TEXT = "上洋村宅基地审批卡在区里两年,涉及历史遗留,村民多次来问"


def at(day: int, hour: int) -> datetime:
    return datetime(2020, 3, day, hour, 0, tzinfo=SHANGHAI)


def to_district(chat: Chat) -> int:
    n = chat.say("v001", f"上报 {TEXT}", at=at(2, 9)).issue_id
    assert n
    assert chat.say("v001", f"上报 #{n}", at=at(2, 10)).outcome == "ok"
    assert chat.say("t101", f"研判 #{n} 属历史遗留,需区里认定 风险:高", at=at(2, 11)).outcome == "ok"
    assert chat.say("t101", f"上报 #{n} 请区里协调", at=at(2, 14)).outcome == "ok"
    return n


def test_below_the_district_it_is_办结_and_at_the_district_化解(chat: Chat) -> None:
    village = chat.say("v002", "上报 上洋村路灯坏了一个月,晚上出行不便,请尽快修复", at=at(2, 9)).issue_id
    done = chat.say("v002", f"办结 #{village} 已更换灯泡", at=at(2, 15))
    assert f"#{village}【已办结】" in done.reply and "化解" not in done.reply
    n = to_district(chat)
    chat.say("d001", f"交办 #{n} 区自然资源局 限5天", mentions=("p001",), at=at(3, 10))
    resolved = chat.say("p001", f"化解 #{n} 已补办手续", at=at(4, 10))
    assert f"#{n}【已化解】" in resolved.reply
    card = chat.say("d001", f"查 #{n}", at=at(4, 11)).reply
    assert "区级 · 已化解" in card and "钱七 化解:已补办手续" in card
    assert (
        "王小明" not in chat.say("v002", f"查 #{village}").reply
        and "办结:已更换灯泡" in chat.say("v002", f"查 #{village}").reply
    )


def test_a_failed_回访_is_named_so_in_the_timeline(chat: Chat) -> None:
    n = chat.say("v002", "上报 上洋村路灯坏了一个月,晚上出行不便,请尽快修复", at=at(2, 9)).issue_id
    chat.say("v001", f"办结 #{n} 已更换灯泡", at=at(2, 15))
    assert chat.say("v002", f"不满意 #{n} 第二天又不亮了", at=at(3, 9)).outcome == "ok"
    card = chat.say("v002", f"查 #{n}", at=at(3, 10)).reply
    assert "回访不满意:第二天又不亮了" in card and "重办" not in card.split("\n")[-1]


async def test_the_issue_page_uses_the_same_words(tmp_path: Path) -> None:
    org, tokens = org_with_tokens(tmp_path)
    clock = FrozenClock(at(2, 9))
    app = build(Settings(database_url=f"sqlite:///{tmp_path}/w.db", org_file=org, photos_dir=tmp_path / "p"), clock)
    chat = Chat(app, clock)
    n = to_district(chat)
    chat.say("d001", f"交办 #{n} 区自然资源局 限5天", mentions=("p001",), at=at(3, 10))
    chat.say("p001", f"化解 #{n} 已补办手续", at=at(4, 10))
    assert chat.say("v001", f"不满意 #{n} 手续还没拿到", at=at(5, 10)).outcome == "ok"
    auth = {"Authorization": f"Bearer {tokens['district']}"}
    async with TestClient(TestServer(create_web_app(app), host="127.0.0.1")) as client:
        body = await (await client.get(f"/api/issues/{n}", headers=auth)).json()
        html = await (await client.get(f"/dashboard/issues/{n}", headers=auth)).text()
    app.engine.dispose()
    assert [e["kind_name"] for e in body["events"]][-3:] == ["交办", "化解", "回访不满意"]
    assert "回访不满意" in html and "</b> 化解" in html


def test_a_tuesday_交办_says_it_is_a_周二无会日办理件(chat: Chat) -> None:
    n = to_district(chat)
    tuesday = chat.say("d001", f"交办 #{n} 区自然资源局 限5天", mentions=("p001",), at=at(3, 10))
    assert "周二无会日办理件" in tuesday.reply
    other = to_district(chat)
    wednesday = chat.say("d001", f"交办 #{other} 区自然资源局 限5天", mentions=("p001",), at=at(4, 10))
    assert wednesday.outcome == "ok" and "周二无会日" not in wednesday.reply


def test_the_district_notice_of_an_escalation_carries_the_township_review(chat: Chat) -> None:
    n = to_district(chat)
    notices = [chat.shown(s) for s in chat.received_in("cid-district") if f"#{n}" in s.text]
    assert len(notices) == 1, notices
    assert "乡镇(街道)研判: 属历史遗留,需区里认定" in notices[0] and "上报理由: 请区里协调" in notices[0]
