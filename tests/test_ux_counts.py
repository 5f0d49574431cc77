"""Surfaces that agree: one district case returned, assigned again, resolved, reopened and
resolved again counts once on the dashboard's trend, on its cards and in chat 统计; the ledger
shows the columns that explain each count (the first district assignment, its 周二无会日 flag
and 包案人, the level of the resolution, days so far, a masked description)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import App, build
from bot.config import Settings
from bot.web import create_web_app
from bot.web.export import HEADERS
from models.clock import SHANGHAI, FrozenClock
from tests.conftest import Chat
from tests.web_support import org_with_tokens

MON = datetime(2020, 3, 2, 9, 0, tzinfo=SHANGHAI)
NOW = datetime(2020, 4, 1, 12, 0, tzinfo=SHANGHAI)


def at(month: int, day: int, hour: int = 10) -> datetime:
    return datetime(2020, month, day, hour, 0, tzinfo=SHANGHAI)


@dataclass
class Walked:
    app: App
    chat: Chat
    tokens: dict[str, str]
    case: int  # the district case, reopened and resolved twice
    open_case: int  # still open at the village, registered 2020-03-20

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens['district']}"}


@pytest.fixture
def walked(tmp_path: Path) -> Iterator[Walked]:
    org, tokens = org_with_tokens(tmp_path)
    clock = FrozenClock(MON)
    app = build(Settings(database_url=f"sqlite:///{tmp_path}/ux.db", org_file=org, photos_dir=tmp_path / "p"), clock)
    chat = Chat(app, clock)
    steps: list[tuple[datetime, str, str, tuple[str, ...]]] = [
        (at(3, 2, 9), "v001", "上报 上洋村宅基地审批卡了两年,村民多次来问,联系电话13800000001", ()),
        (at(3, 2, 10), "v001", "上报 #{n} 村里协调不了", ()),
        (at(3, 2, 11), "t101", "研判 #{n} 需区里认定 风险:高", ()),
        (at(3, 2, 14), "t101", "上报 #{n} 请区里协调", ()),
        (at(3, 3), "d001", "交办 #{n} 区自然资源局 限5天", ("p001",)),  # a Tuesday: 周二无会日
        (at(3, 5), "d001", "退回 #{n} 请街道先补齐材料", ()),
        (at(3, 6), "t101", "上报 #{n} 材料已补齐", ()),
        (at(3, 9), "d001", "交办 #{n} 区人力社保局 限5天", ("p002",)),  # a Monday
        (at(3, 10), "p002", "化解 #{n} 已补办手续", ()),
        (at(3, 16), "d001", "重办 #{n} 当事人仍有异议", ()),
        (at(3, 25), "p002", "化解 #{n} 已再次协调到位", ()),
    ]
    number = 0
    for when, who, text, mentions in steps:
        heard = chat.say(who, text.format(n=number), at=when, mentions=mentions)
        assert heard.outcome == "ok", (text, heard.reply)
        number = number or heard.issue_id or 0
    other = chat.say("v002", "上报 上洋村路灯坏了一个月,晚上出行不便,请尽快修复", at=at(3, 20))
    assert other.issue_id
    chat.at = clock.at = NOW
    yield Walked(app, chat, tokens, number, other.issue_id)
    app.engine.dispose()


@pytest.fixture
async def client(walked: Walked) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_web_app(walked.app), host="127.0.0.1")) as c:
        yield c


def weekly(html: str, series: str) -> dict[str, int]:
    found = re.findall(rf'<circle class="point {series}" data-week="([-\d]+)" data-value="(\d+)"', html)
    return {week: int(v) for week, v in found if int(v)}


async def test_a_case_resolved_twice_counts_once_on_the_trend_the_cards_and_in_chat(
    client: TestClient, walked: Walked
) -> None:
    r = await client.get("/dashboard?from=2020-01-01&to=2020-12-31", headers=walked.auth())
    assert r.status == 200
    html = await r.text()
    assert weekly(html, "resolved") == {"2020-03-23": 1}  # the standing 化解, not the reopened one
    assert "办结 1 件" in html
    assert re.search(r'data-stat="district_resolved">1<', html) and re.search(r'data-stat="tuesday_resolved">1<', html)
    reply = walked.chat.say("d001", "统计 2020").reply
    assert "区级交办1·化解1(" in reply.replace(" ", "")


async def test_a_case_reopened_and_still_open_is_not_on_the_trend(client: TestClient, walked: Walked) -> None:
    heard = walked.chat.say("d001", f"重办 #{walked.case} 复核不通过", at=NOW)
    assert heard.outcome == "ok", heard.reply
    html = await (await client.get("/dashboard", headers=walked.auth())).text()
    assert weekly(html, "resolved") == {} and "办结 0 件" in html


async def test_the_ledger_explains_the_district_count(client: TestClient, walked: Walked) -> None:
    r = await client.get("/api/export.csv", headers=walked.auth())
    assert r.status == 200
    rows = list(csv.reader(io.StringIO((await r.read())[3:].decode("utf-8"), newline="")))
    assert tuple(rows[0]) == HEADERS
    by_id = {int(row[0]): dict(zip(HEADERS, row, strict=True)) for row in rows[1:]}
    case = by_id[walked.case]
    # Counted as a 周二无会日 assignment of 钱七 on 3月3日, though 退回 and a Monday 交办 to 叶俊杰 followed.
    assert (case["首次区级交办"], case["周二无会日"], case["交办包案人"]) == ("2020-03-03 10:00", "是", "钱七")
    assert (case["包案人"], case["办结层级"], case["状态"]) == ("叶俊杰", "区级", "已办结")
    assert case["问题描述"].startswith("上洋村宅基地审批") and "138****0001" in case["问题描述"]
    assert "13800000001" not in "".join(",".join(row) for row in rows)
    still_open = by_id[walked.open_case]
    assert (still_open["办理天数"], still_open["办结层级"], still_open["首次区级交办"]) == ("12", "", "")
    assert still_open["周二无会日"] == ""  # never assigned at the district: in no 区级 count
