"""交办 with the 包案人's name typed without @: accepted when exactly one person who may own the
case has that name; with several, one line asks which, naming their units (no staffIds)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from bot.app import build
from bot.config import Settings
from bot.org import SAMPLE
from models.clock import SHANGHAI, FrozenClock
from tests.conftest import Chat

AT = datetime(2020, 3, 4, 10, 0, tzinfo=SHANGHAI)  # a Wednesday
EXTRA = '  - {id: "p009", name: 叶俊杰, role: department, unit: 区住建局}\n'


def at_district(chat: Chat) -> int:
    n = chat.say("t101", "上报 花园街道某企业拖欠工资23人,老板失联", at=AT).issue_id
    assert n and chat.say("t101", f"上报 #{n}", at=AT).outcome == "ok"
    return n


def test_a_unique_name_without_at_is_the_owner(chat: Chat) -> None:
    n = at_district(chat)
    r = chat.say("d001", f"交办 #{n} 叶俊杰 限3天", at=AT)
    assert r.outcome == "ok" and r.reply.startswith(f"#{n} 已交办 @叶俊杰 · 区人力社保局") and r.at == ("p002",)
    assert chat.issue(n).owner_id == "p002"


def test_no_name_and_no_at_is_still_asked_for(chat: Chat) -> None:
    n = at_district(chat)
    before = chat.state()
    r = chat.say("d001", f"交办 #{n} 限3天", at=AT)
    assert r.outcome == "refused" and r.reply == "请@包案人,如「交办 #12 @钱七 区自然资源局 限10个工作日」。"
    assert chat.state() == before


def test_a_name_out_of_the_levels_reach_is_refused(chat: Chat) -> None:
    n = chat.say("v001", "上报 上洋村路灯坏了一个月,晚上出行不便,请尽快修复", at=AT).issue_id
    chat.say("v001", f"上报 #{n}", at=AT)
    r = chat.say("t101", f"交办 #{n} 叶俊杰 限3天", at=AT)  # a district bureau's, not 花园街道's
    assert r.outcome == "refused" and r.reply.startswith("包案人应为花园街道或其下属单位的人员")


@pytest.fixture
def twins(tmp_path: Path) -> Iterator[Chat]:
    org = tmp_path / "org.yaml"
    text = SAMPLE.read_text(encoding="utf-8")
    anchor = next(line for line in text.splitlines(keepends=True) if '"p003"' in line)
    org.write_text(text.replace(anchor, anchor + EXTRA), encoding="utf-8")
    clock = FrozenClock(AT)
    app = build(Settings(database_url=f"sqlite:///{tmp_path}/t.db", org_file=org, photos_dir=tmp_path / "p"), clock)
    yield Chat(app, clock)
    app.engine.dispose()


def test_two_people_of_that_name_get_one_question_and_no_change(twins: Chat) -> None:
    n = at_district(twins)
    before = twins.state()
    r = twins.say("d001", f"交办 #{n} 叶俊杰 限3天", at=AT)
    assert r.outcome == "refused"
    assert r.reply == "「叶俊杰」有2位(区人力社保局、区住建局),是哪一位?请@包案人。"
    assert "p002" not in r.reply and "p009" not in r.reply and "\n" not in r.reply
    assert twins.state()[:2] == before[:2]
    assert twins.say("d001", f"交办 #{n} 限3天", mentions=("p009",), at=AT).outcome == "ok"
    assert twins.issue(n).owner_id == "p009"
