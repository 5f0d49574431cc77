"""Each rule of models/rules.py and its SQL twin agree on the same data: every unit, person and
day against issues in every state the lifecycle produces."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlmodel import Session, col, select

from models import rules
from models.db import unit_of_work
from models.tables import Issue, Person
from models.vocabulary import LEVELS, OPEN_STATUSES, Status
from tests.conftest import Chat

TEXT = "村民反映宅基地审批迟迟没有结果,情绪激动"


@pytest.fixture
def world(chat: Chat) -> Chat:
    """Issues at every level and status, in two townships, with deadlines before and after the
    days the tests look at."""
    for reporter, lead in (("v001", "t101"), ("v004", "t102")):
        chat.say(reporter, f"上报 {TEXT}")  # village, submitted
        n = chat.say(reporter, f"上报 {TEXT}").issue_id
        chat.say(reporter, f"办结 #{n} 已调解")  # village, resolved
        n = chat.say(reporter, f"上报 {TEXT}").issue_id
        chat.say(reporter, f"上报 #{n}")
        chat.say(lead, f"研判 #{n} 需区里协调")  # township, reviewed
        for days, owner in ((3, "p001"), (10, "p002"), (30, "d002")):
            n = chat.say(reporter, f"上报 {TEXT}").issue_id
            chat.say(reporter, f"上报 #{n}")
            chat.say(lead, f"上报 #{n}")
            chat.say("d001", f"交办 #{n} 限{days}天", mentions=(owner,))  # district, assigned
        chat.say("p001", f"办结 #{n} 已化解")  # not the owner: refused, stays assigned
        chat.say("d002", f"办结 #{n} 已化解")  # the owner: resolved with a deadline
        m = chat.say(reporter, f"上报 {TEXT}").issue_id
        chat.say(reporter, f"上报 {TEXT}")
        assert chat.say(reporter, f"合并 #{m} #{m + 1}").outcome == "ok"  # closed as a duplicate
    chat.say("t001", f"上报 {TEXT}")  # township, submitted, no village
    return chat


def _all(chat: Chat) -> tuple[list[Issue], list[Person]]:
    with Session(chat.app.engine) as s:
        return list(s.exec(select(Issue).order_by(Issue.id))), list(s.exec(select(Person).order_by(Person.id)))


def _ids(chat: Chat, clause: object) -> list[int]:
    with Session(chat.app.engine) as s:
        return list(s.exec(select(Issue.id).where(clause).order_by(Issue.id)))  # type: ignore[arg-type]


def test_the_world_holds_every_status_and_level(world: Chat) -> None:
    issues, _ = _all(world)
    assert {i.status for i in issues} == {"submitted", "reviewed", "assigned", "resolved", "closed"}
    assert {i.level for i in issues} == set(LEVELS)
    assert any(i.deadline for i in issues if i.status == "resolved")


def test_open_and_overdue_agree_with_their_sql(world: Chat) -> None:
    issues, _ = _all(world)
    assert [i.id for i in issues if rules.is_open(i.status)] == _ids(world, rules.open_clause())
    deadlines = sorted({i.deadline for i in issues if i.deadline})
    days = {d + timedelta(days=k) for d in deadlines for k in (-1, 0, 1)} | {date(2019, 1, 1), date(2030, 1, 1)}
    seen_some = False
    for today in sorted(days):
        python = [i.id for i in issues if rules.is_overdue(i, today)]
        assert python == _ids(world, rules.overdue_clause(today)), today
        seen_some = seen_some or bool(python)
        for i in issues:
            late = rules.days_overdue(i.status, i.deadline, today)
            assert (late > 0) == (i.id in python) and late >= 0
    assert seen_some


def test_subtree_and_visibility_agree_with_their_sql(world: Chat) -> None:
    issues, people = _all(world)
    units = world.app.dispatcher.directory.units.values()
    assert {u.kind for u in units} == {"district", "township", "village", "department"}
    for unit in units:
        assert [i.id for i in issues if rules.in_subtree(unit, i)] == _ids(world, rules.in_subtree_clause(unit))
    directory = world.app.dispatcher.directory
    for person in people:
        unit = directory.get(person.unit_id)
        python = [i.id for i in issues if rules.visible(unit, person.id, i)]
        assert python == _ids(world, rules.visible_clause(unit, person.id)), person.id


def test_who_leads_a_level_agrees_with_its_sql(world: Chat) -> None:
    with unit_of_work(world.app.engine) as s:  # a township lead who left DingTalk leads nothing
        gone = s.get(Person, "t101")
        assert gone is not None and gone.role == "township_lead"
        gone.active = False
        s.add(gone)
    _, people = _all(world)
    assert not any(rules.leads(p, level, p.unit_id) for p in people if p.id == "t101" for level in LEVELS)
    directory = world.app.dispatcher.directory
    pairs = 0
    with Session(world.app.engine) as s:
        for level in LEVELS:
            for unit in directory.units.values():
                python = [p.id for p in people if rules.leads(p, level, unit.id)]
                sql = list(s.exec(select(Person.id).where(rules.leads_clause(level, unit.id)).order_by(Person.id)))
                assert python == sql, (level, unit.name)
                pairs += bool(python)
    assert pairs >= 5  # villages' staff, townships' and the district's leads


def test_who_may_own_a_case_follows_the_unit_tree(world: Chat) -> None:
    directory = world.app.dispatcher.directory
    with Session(world.app.engine) as s:
        people = {p.id: p for p in s.exec(select(Person).where(col(Person.id).in_(["v001", "v004", "t001", "p001"])))}
        people["gone"] = Person(
            id="gone", name="离职者", role="village_staff", unit_id=people["v001"].unit_id, active=False
        )
    shangyang, huayuan = directory.resolve("上洋村"), directory.resolve("花园街道")
    assert shangyang and huayuan
    owns = {
        (level, unit.id): sorted(pid for pid, p in people.items() if rules.may_own(directory, level, unit.id, p))
        for level, unit in (("village", shangyang), ("township", huayuan), ("district", directory.district))
    }
    assert owns == {
        ("village", shangyang.id): ["v001"],
        ("township", huayuan.id): ["t001", "v001"],
        ("district", directory.district.id): ["p001", "t001", "v001", "v004"],
    }


def test_an_issue_that_is_not_a_closed_duplicate_is_resolved_or_open() -> None:
    """The dashboard's township rows count the open ones as those not resolved (bot.web.stats)."""
    assert set(Status) - {Status.RESOLVED, Status.CLOSED} == set(OPEN_STATUSES)
