"""The kept counts (models.facts, read by models.counts) equal a from-scratch recount over the
events (models.recount, the old event-scanning SQL) for random lives of cases: random sequences
of the chat verbs through the dispatcher under a frozen clock, some with createAt out of order,
on SQLite and on PostgreSQL. `verify` rebuilds the kept rows and catches a tampered one; the
migration's backfill gives the same rows as the events did."""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlmodel import Session, col, select

from bot.app import App, build
from bot.cli import main as cli
from bot.config import Settings
from bot.web.stats import trend
from models.clock import SHANGHAI, FrozenClock, day_start
from models.counts import Period, count_levels, resolved_in
from models.facts import F, comparable
from models.queries import leads_of
from models.recount import recount_levels, recount_resolved, recount_resolved_weeks
from models.tables import Issue
from models.verify import verify_chains
from tests.conftest import Chat
from tests.databases import database_url
from tests.postgres import fresh_database

T = TypeVar("T")
START = datetime(2020, 3, 2, 9, 0, tzinfo=SHANGHAI)  # a Monday
SCOPES = ("柯城区", "花园街道", "府山街道", "航埠镇", "上洋村", "东港社区", "坊门街社区")
SCOPES += ("区自然资源局", "区人力社保局")
REPORTERS = ("v001", "v001", "v002", "t001", "t002", "d001")
PLACES = ("上洋村", "东港社区", "坊门街社区", "航埠镇/新村", "")
LEAD = {"village": "v001", "township": "t101", "district": "d001"}
OWNERS = {"village": ("v002", "v001"), "township": ("t001",), "district": ("p001", "p002", "d002")}
VERBS = (
    ["new"] * 3
    + ["escalate"] * 3
    + ["review", "assign", "assign", "resolve", "resolve", "return", "reopen", "dissatisfied"]
    + ["merge", "amend", "feedback"]
)
FITTING = {
    "submitted": ("escalate", "escalate", "review", "assign", "assign", "resolve", "return", "merge", "amend"),
    "reviewed": ("escalate", "assign", "resolve", "return", "amend"),
    "assigned": ("resolve", "resolve", "feedback", "return", "escalate", "amend"),
    "resolved": ("reopen", "dissatisfied", "return", "escalate"),
    "closed": ("amend", "resolve", "reopen"),
}
# Minutes between messages: mostly forward, sometimes a message whose createAt is earlier.
STEPS = (-180, -5, 0, 7, 60, 60, 600, 600, 1440, 1440, 1440 * 3, 1440 * 9, 1440 * 40)
TABLES = ("count_facts", "ladder_steps", "todo_tasks", "issue_events", "issues", "inbox", "outbox")


class Draws:
    """Choices from Hypothesis (shrinkable) or from a seeded Random (fixed lives)."""

    def __init__(self, data: st.DataObject | None = None, rng: random.Random | None = None) -> None:
        self.data, self.rng = data, rng

    def pick(self, options: Sequence[T]) -> T:
        if self.data is not None:
            return self.data.draw(st.sampled_from(options))
        assert self.rng is not None
        return self.rng.choice(options)

    def number(self, lo: int, hi: int) -> int:
        if self.data is not None:
            return self.data.draw(st.integers(lo, hi))
        assert self.rng is not None
        return self.rng.randint(lo, hi)


def live(chat: Chat, draw: Draws, tag: str, steps: int = 30) -> list[int]:
    """One random life of a few cases; returns the issue numbers."""
    issues: list[int] = []
    at = START
    for i in range(draw.number(4, steps)):
        at += timedelta(minutes=draw.pick(STEPS))
        msg_id = f"{tag}-{i}"
        n = draw.pick(issues) if issues else 0
        if not issues or draw.number(0, 5) == 0:
            verb = "new"
        else:  # mostly a verb that fits the issue's status, sometimes any (a refusal changes nothing)
            fits = FITTING.get(chat.issue(n).status, VERBS)
            verb = draw.pick(fits if draw.number(0, 4) else VERBS)
        if verb == "new":
            who, place = draw.pick(REPORTERS), draw.pick(PLACES)
            r = chat.say(who, f"上报 {place}村民反映第{i}号宅基地审批迟迟没有结果,情绪激动", at=at, msg_id=msg_id)
            if r.outcome == "ok" and r.issue_id:
                issues.append(r.issue_id)
            continue
        issue = chat.issue(n)
        with Session(chat.app.engine) as s:
            leads = [p.id for p in leads_of(s, issue.level, issue.unit_id)] or [LEAD[issue.level]]
        right = draw.pick(leads)
        anyone = ("v001", "t001", "t101", "t102", "d001", "p001", issue.owner_id or "d002", issue.reporter_id)
        who = draw.pick([right, right, right, *anyone])
        mentions: tuple[str, ...] = ()
        if verb == "escalate":
            words = f"上报 #{n} 需要上级协调"
        elif verb == "review":
            words = f"研判 #{n} 情况属实 风险:高"
        elif verb == "assign":
            mentions = (draw.pick(OWNERS[issue.level]),)
            words = f"交办 #{n} 限5天" + draw.pick(["", " 周二无会日"])
        elif verb == "resolve":
            who = draw.pick([issue.owner_id or right, right, who])
            words = f"办结 #{n} 已解决"
        elif verb == "return":
            words = f"退回 #{n} 请先核实"
        elif verb == "reopen":
            words = f"重办 #{n} 仍有异议"
        elif verb == "dissatisfied":
            who, words = issue.reporter_id, f"不满意 #{n} 当事人不认可"
        elif verb == "merge":
            same = [m for m in issues if m != n and chat.issue(m).unit_id == issue.unit_id]
            words = f"合并 #{draw.pick(same or issues)} #{n}"
        elif verb == "amend":
            words = f"改 #{n} 村={draw.pick(['上洋村', '东港社区', '坊门街社区', '亭川社区'])}"
        else:
            words = f"反馈 #{n} 正在处理"
        chat.say(who, words, at=at, msg_id=msg_id, mentions=mentions)
    return issues


def periods(data: st.DataObject) -> list[Period]:
    first = START.date() + timedelta(days=data.draw(st.integers(0, 120), label="from"))
    last = first + timedelta(days=data.draw(st.integers(0, 90), label="length"))
    week = START.date() + timedelta(days=7 * data.draw(st.integers(0, 12), label="week"))
    return [
        Period(date(2020, 1, 1), date(2020, 12, 31), "2020年"),
        Period(first, last, "range"),
        Period(week, week + timedelta(days=6), "week"),
    ]


def check(app: App, data: st.DataObject) -> None:
    directory = app.dispatcher.directory
    later = START + timedelta(days=data.draw(st.integers(0, 200), label="now"))
    with Session(app.engine) as s:
        assert verify_chains(s) == []
        for period in periods(data):
            for name in SCOPES:
                unit = directory.resolve(name)
                for now in (later, datetime(2021, 6, 1, tzinfo=SHANGHAI)):
                    kept, scanned = count_levels(s, period, unit, now), recount_levels(s, period, unit, now)
                    assert kept == scanned, (name, period, now)
                assert resolved_in(s, unit, period) == recount_resolved(s, unit, period), (name, period)
        for name in SCOPES:  # the dashboard's trend: each case once, in the week of its counted resolution
            unit = directory.resolve(name)
            for now in (later, datetime(2021, 6, 1, tzinfo=SHANGHAI)):
                weeks = trend(s, unit, now)
                bounds = [day_start(w.start) for w in weeks] + [day_start(weeks[-1].start + timedelta(weeks=1))]
                assert [w.resolved for w in weeks] == recount_resolved_weeks(s, unit, bounds, now), (name, now)


def wipe(app: App) -> None:
    with app.engine.begin() as conn:
        for table in TABLES:
            conn.execute(text(f"DELETE FROM {table}"))


FUZZ = settings(
    max_examples=int(os.environ.get("LIANDONG_COUNT_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(data=st.data())
def test_kept_counts_equal_a_recount_over_the_events(app: App, clock: FrozenClock, data: st.DataObject) -> None:
    wipe(app)
    live(Chat(app, clock), Draws(data), uuid.uuid4().hex[:8])
    check(app, data)


# -- PostgreSQL -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg() -> Iterator[tuple[App, FrozenClock]]:
    with fresh_database() as url:
        clock = FrozenClock(START)
        app = build(Settings(database_url=url), clock)
        try:
            yield app, clock
        finally:
            app.engine.dispose()


@settings(FUZZ, max_examples=int(os.environ.get("LIANDONG_COUNT_EXAMPLES_PG", "12")))
@given(data=st.data())
@pytest.mark.postgres
def test_kept_counts_equal_a_recount_on_postgres(pg: tuple[App, FrozenClock], data: st.DataObject) -> None:
    app, clock = pg
    wipe(app)
    live(Chat(app, clock), Draws(data), uuid.uuid4().hex[:8])
    check(app, data)


# -- verify and the backfill -----------------------------------------------------------------


@pytest.fixture
def history(chat: Chat, monkeypatch: pytest.MonkeyPatch) -> Chat:
    tuesday = datetime(2020, 3, 3, 10, 0, tzinfo=SHANGHAI)
    chat.say("v001", "上报 上洋村村民反映宅基地审批8个月未批复")
    chat.say("v001", "上报 #1 村里协调不了")
    chat.say("t101", "研判 #1 需区里协调 风险:高")
    chat.say("t101", "上报 #1 需区级部门协调")
    assert chat.say("d001", "交办 #1 区自然资源局 限10个工作日", mentions=("p001",), at=tuesday).outcome == "ok"
    assert chat.say("p001", "化解 #1 已化解", at=tuesday + timedelta(days=2)).outcome == "ok"
    chat.say("v002", "上报 上洋村道路塌方,影响通行")
    assert chat.say("v002", "办结 #2 已修复", at=tuesday + timedelta(days=3)).outcome == "ok"
    monkeypatch.setenv("DATABASE_URL", chat.app.settings.database_url)
    return chat


def _sql(chat: Chat, statement: str) -> None:
    with chat.app.engine.begin() as conn:
        conn.execute(text(statement))


def test_verify_passes_kept_counts_that_agree(history: Chat, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["verify"]) == 0
    assert "统计数据与事件一致" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("statement", "found"),
    [
        ("UPDATE count_facts SET tuesday = FALSE WHERE kind = 'district_assigned'", "#1: 统计数据与事件不符(区级交办)"),
        ("UPDATE count_facts SET until = at WHERE kind = 'district_resolved'", "#1: 统计数据与事件不符(区级化解)"),
        (
            "DELETE FROM count_facts WHERE issue_id = 2 AND kind = 'village_resolved'",
            "#2: 统计数据与事件不符(村级办结)",
        ),
        ("UPDATE count_facts SET village_id = NULL WHERE issue_id = 2", "#2: 统计数据与事件不符(村级排摸、村级办结)"),
        (
            "INSERT INTO count_facts (issue_id, kind, seq, at, tuesday) "
            "SELECT issue_id, 'township_entered', seq, at, FALSE FROM count_facts WHERE issue_id = 2 LIMIT 1",
            "#2: 统计数据与事件不符(乡镇提交)",
        ),
    ],
)
def test_verify_catches_a_tampered_count(
    history: Chat, capsys: pytest.CaptureFixture[str], statement: str, found: str
) -> None:
    _sql(history, statement)
    assert cli(["verify"]) == 1
    assert found in capsys.readouterr().out.splitlines()


def test_the_migration_backfills_what_the_events_kept(tmp_path: Path, clock: FrozenClock) -> None:
    """An existing database (before 0007) keeps its figures: downgrade, upgrade, same rows."""
    from alembic import command

    from models.db import alembic_config

    app = build(Settings(database_url=database_url(tmp_path, "b")), clock)
    try:
        chat = Chat(app, clock)
        for seed in range(6):
            live(chat, Draws(rng=random.Random(seed)), f"b{seed}", steps=60)
        days = select(col(Issue.id), col(Issue.resolved_days)).order_by(col(Issue.id))
        with Session(app.engine) as s:
            before = comparable(dict(r) for r in s.connection().execute(F.select()).mappings())
            resolved_days = s.exec(days).all()
            year = count_levels(s, Period(date(2020, 1, 1), date(2020, 12, 31), "2020年"), None, START)
        assert before
        cfg = alembic_config(app.settings.database_url)
        command.downgrade(cfg, "0006")
        command.upgrade(cfg, "heads")
        with Session(app.engine) as s:
            after = comparable(dict(r) for r in s.connection().execute(F.select()).mappings())
            assert after == before
            assert s.exec(days).all() == resolved_days and any(d is not None for _, d in resolved_days)
            assert count_levels(s, Period(date(2020, 1, 1), date(2020, 12, 31), "2020年"), None, START) == year
            assert verify_chains(s) == []
            assert s.get(Issue, 1) is not None
    finally:
        app.engine.dispose()
