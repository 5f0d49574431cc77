"""A scripted 2020 through the dispatcher whose 统计 2020 is the district's reported paragraph,
number for number, with duplicate deliveries, refusals, a return from the district and
re-escalation, reopenings, a merged duplicate and events just outside the year."""

from __future__ import annotations

import itertools
from datetime import date, datetime, time, timedelta

import pytest

from bot.cli import main as cli
from models.clock import SHANGHAI
from tests.conftest import Chat
from tests.databases import database_url

PARAGRAPH = (
    '区级层面累计交办"两难"问题146件,已化解116件。其中,"周二无会日"办理件103件,已化解84件;'
    "平时交办43件,已化解32件。乡镇(街道)层面累计提交621件,办结445件;村(社区)层面累计排摸1920件,办结1515件。"
)
VILLAGE_STAFF = ["v001", "v002", "v003", "v004", "v005", "v006", "v007", "v008"]
ESCALATING_VILLAGE_STAFF = ["v001", "v004", "v005", "v002"]  # villages whose township has a lead
TOWNSHIP_REPORTERS = ["t001", "t002", "t101", "t102", "t103"]
LEAD_OF = {
    "v001": "t101",
    "v002": "t101",
    "v004": "t102",
    "v005": "t103",
    "t001": "t101",
    "t002": "t102",
    "t101": "t101",
    "t102": "t102",
    "t103": "t103",
}
OWNERS = ["p001", "p002", "p003", "d002"]
TEXT = "上报 村民反映宅基地审批{n}号件迟迟没有结果,情绪激动"


def at(d: date, hour: int = 10) -> datetime:
    return datetime.combine(d, time(hour), tzinfo=SHANGHAI)


def village_reporter(i: int) -> str:
    return ESCALATING_VILLAGE_STAFF[i % 4] if 1515 <= i < 1815 else VILLAGE_STAFF[i % 8]


def next_weekday(d: date, weekday: int) -> date:
    return d + timedelta(days=(weekday - d.weekday()) % 7 or 7)


class Year:
    def __init__(self, chat: Chat) -> None:
        self.chat = chat
        self.serial = itertools.count()
        self.duplicates = self.refusals = 0

    def new(self, who: str, day: date) -> int:
        n = next(self.serial)
        msg_id = f"new-{n}"
        r = self.chat.say(who, TEXT.format(n=n), at=at(day), msg_id=msg_id)
        assert r.outcome == "ok" and r.issue_id, r.reply
        if n % 50 == 0:  # DingTalk delivers it again
            again = self.chat.say(who, TEXT.format(n=n), at=at(day), msg_id=msg_id)
            assert again.outcome == "duplicate" and again.reply == r.reply
            self.duplicates += 1
        if n % 97 == 0:  # a village clerk tries what only a lead may do; a typo in the number
            assert self.chat.say("t001", f"交办 #{r.issue_id}", mentions=("p001",)).outcome == "refused"
            assert self.chat.say(who, "查 #999999").outcome == "refused"
            self.refusals += 2
        return r.issue_id

    def do(self, who: str, text: str, day: date, mentions: tuple[str, ...] = ()) -> None:
        r = self.chat.say(who, text, at=at(day), mentions=mentions)
        assert r.outcome == "ok", (who, text, r.reply)


def script_2020(y: Year) -> None:
    with y.chat.batched():  # thousands of messages: replies are sent a hundred at a time
        _script_2020(y)


def _script_2020(y: Year) -> None:
    start = date(2020, 1, 2)
    township: list[tuple[int, str, date]] = []  # (issue, who may act for the township, day it got there)
    for i in range(1920):
        day = start + timedelta(days=i * 320 // 1920)
        who = village_reporter(i)
        n = y.new(who, day)
        if i == 1:  # a second post about the same case, folded in while it is open: never counted
            dup = y.new(who, day)
            y.do(who, f"合并 #{n} #{dup}", day)
        if i < 1515:
            y.do(who, f"办结 #{n} 已调解", day + timedelta(days=1))
            if i == 0:  # reopened by the reporter and resolved again: still one
                y.do(who, f"不满意 #{n} 当事人不认可", day + timedelta(days=2))
                y.do(who, f"办结 #{n} 再次调解成功", day + timedelta(days=3))
        elif i < 1815:
            y.do(who, f"上报 #{n} 村里协调不了", day + timedelta(days=1))
            township.append((n, LEAD_OF[who], day + timedelta(days=1)))
    for j in range(321):
        day = start + timedelta(days=j * 320 // 321)
        who = TOWNSHIP_REPORTERS[j % 5]
        township.append((y.new(who, day), who, day))
    assert len(township) == 621
    district: list[tuple[int, date]] = []
    for k, (n, actor, day) in enumerate(township):
        if k < 445:
            y.do(LEAD_OF[actor], f"办结 #{n} 街道协调解决", day + timedelta(days=2))
        elif k < 605:
            y.do(actor, f"上报 #{n} 需区级部门协调", day + timedelta(days=2))
            district.append((n, day + timedelta(days=2)))
    for k, (n, day) in enumerate(district):
        owner = OWNERS[k % 4]
        if k < 60:  # assigned on a Tuesday
            when = next_weekday(day, 1)
            y.do("d001", f"交办 #{n} 限10个工作日", when, (owner,))
        elif k < 103:  # assigned on a Thursday, tagged
            when = next_weekday(day, 3)
            y.do("d002", f"交办 #{n} 周二无会日 限10天", when, (owner,))
        elif k < 146:  # ordinary days
            when = next_weekday(day, 2)
            y.do("d003", f"交办 #{n}", when, (owner,))
        else:
            continue  # escalated, not yet assigned
        if k == 0:  # returned from the district, escalated again, assigned again: counted once
            y.do("d001", f"退回 #{n} 请街道先行核实", when + timedelta(days=1))
            y.do("t101", f"上报 #{n} 已核实,仍需区级协调", when + timedelta(days=2))
            y.do("d003", f"交办 #{n}", when + timedelta(days=3), (owner,))
            when += timedelta(days=3)
        if k < 84 or 103 <= k < 135:
            y.do(owner, f"化解 #{n} 已化解", when + timedelta(days=3))
        elif k < 89:  # resolved, but only in January 2021
            y.do(owner, f"化解 #{n} 已化解", date(2021, 1, 5))
        elif k == 135:  # resolved and reopened within 2020: not resolved at year end
            y.do(owner, f"化解 #{n} 已化解", when + timedelta(days=3))
            y.do("d001", f"重办 #{n} 当事人仍有异议", when + timedelta(days=4))
    # Just outside the year, in Shanghai time (both are 2020 in UTC or 2019 in UTC).
    y.new("v003", date(2019, 12, 31))
    y.chat.say("v003", TEXT.format(n="late"), at=datetime(2021, 1, 1, 0, 30, tzinfo=SHANGHAI))


@pytest.fixture(scope="module")
def year_db(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from bot.app import build
    from bot.config import Settings
    from models.clock import FrozenClock

    clock = FrozenClock(at(date(2020, 1, 1)))
    app = build(Settings(database_url=database_url(tmp_path_factory.mktemp("year"), "year")), clock)
    y = Year(Chat(app, clock))
    script_2020(y)
    assert y.duplicates > 30 and y.refusals > 30
    yield app, y
    app.engine.dispose()


def test_chat_statistics_equal_the_reported_paragraph(year_db) -> None:  # type: ignore[no-untyped-def]
    _app, y = year_db
    r = y.chat.say("d001", "统计 2020 原文", at=at(date(2021, 1, 15)))
    assert r.reply.splitlines() == ["【统计】2020年 · 柯城区", PARAGRAPH]


def test_cli_report_prints_the_same_paragraph(year_db, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    app, _ = year_db
    monkeypatch.setenv("DATABASE_URL", app.settings.database_url)
    assert cli(["report", "--year", "2020"]) == 0
    assert capsys.readouterr().out.strip() == PARAGRAPH
    assert cli(["report", "--from", "2020-01-01", "--to", "2020-12-31"]) == 0
    assert capsys.readouterr().out.strip() == PARAGRAPH


def test_scoped_statistics(year_db) -> None:  # type: ignore[no-untyped-def]
    _app, y = year_db
    when = at(date(2021, 1, 15))
    per_township = [y.chat.say(lead, "统计 2020 原文", at=when).reply for lead in ("t101", "t102", "t103")]
    assert all("【统计】2020年 · " in text for text in per_township)
    huayuan = per_township[0]
    assert "柯城区" not in huayuan.splitlines()[0] and "花园街道" in huayuan
    village = y.chat.say("v003", "统计 2020 原文", at=when).reply
    entered = sum(village_reporter(i) == "v003" for i in range(1920))
    resolved = sum(village_reporter(i) == "v003" for i in range(1515))
    assert village.endswith(f"乡镇(街道)层面累计提交0件,办结0件;村(社区)层面累计排摸{entered}件,办结{resolved}件。")
