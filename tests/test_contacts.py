"""The org from DingTalk's contacts: `org sync` / `org diff` against the emulator's contact API,
and contact events through the real SDK client and the emulator's Stream."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from sqlmodel import Session, select

from bot.app import build
from bot.cli import main
from bot.config import Settings
from bot.contacts.plan import DEFAULT_ROLES
from bot.contacts.sync import fetch, sync
from bot.org import OrgError, load_org
from bot.sandbox.emulator import Emulator
from models.db import unit_of_work
from models.queries import find_sender
from models.tables import ContactEvent, Issue, Person, Unit
from models.vocabulary import ROLE_UNIT_KINDS
from tests.dingtalk import Rig, settings, start_runtime

ORG = """
district: {name: 柯城区}
townships:
  - name: 花园街道
    dingtalk_dept: 100
    villages:
      - {name: 上洋村, dingtalk_dept: 101}
      - {name: 东港社区}
departments:
  - {name: 区信访局, dingtalk_dept: 200}
people:
  - {id: "v001", name: 张三, role: village_staff, unit: 上洋村}
  - {id: "t101", name: 王五, role: township_lead, unit: 花园街道}
groups:
  - {conversation_id: "cid-shangyang", unit: 上洋村}
  - {conversation_id: "cid-huayuan", unit: 花园街道}
"""
MANY = 150  # more than one page of user/list (size ≤ 100)


def directory(emulator: Emulator) -> None:
    c = emulator.contacts
    c.add_dept("花园街道", dept_id=100)
    c.add_dept("上洋村", parent=100, dept_id=101)
    c.add_dept("东港社区", parent=100, dept_id=102)  # unmapped in the file: matched by its exact name
    c.add_dept("区信访局", dept_id=200)
    c.add_dept("区食堂", dept_id=300)  # not a unit
    c.add_user("v001", "张三", 101, mobile="13812345678")
    c.add_user("t101", "王五", 100, 101)  # the file says township lead: that stands
    c.add_user("n001", "赵六", 101)
    c.add_user("n002", "钱七", 102)
    c.add_user("n003", "孙八", 200)
    c.add_user("n004", "周九", 300)  # in no unit: not placed
    for i in range(MANY):
        c.add_user(f"m{i:03d}", f"村民{i}", 101)


def write_org(tmp_path: Path) -> Path:
    path = tmp_path / "org.yaml"
    path.write_text(ORG, encoding="utf-8")
    return path


def contact_settings(tmp_path: Path, server: TestServer) -> Settings:
    url = str(server.make_url("")).rstrip("/")
    return dataclasses.replace(settings(tmp_path, write_org(tmp_path)), openapi_endpoint=url, oapi_endpoint=url)


class Seen(tuple[str, str, str, bool]):
    """A person as the database has them: name, role, unit name, active."""

    name = property(lambda self: self[0])
    role = property(lambda self: self[1])
    unit_name = property(lambda self: self[2])
    active = property(lambda self: self[3])


def people(s: Settings) -> dict[str, Seen]:
    app = build(s)
    with Session(app.engine) as session:
        units = {u.id: u.name for u in session.exec(select(Unit))}
        found = {p.id: Seen((p.name, p.role, units[p.unit_id], p.active)) for p in session.exec(select(Person))}
    app.engine.dispose()
    return found


def cli_env(s: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "DATABASE_URL": s.database_url,
        "LIANDONG_ORG_FILE": str(s.org_file),
        "DINGTALK_CLIENT_ID": "sandbox-id",
        "DINGTALK_CLIENT_SECRET": "sandbox-secret",
        "DINGTALK_OPENAPI_ENDPOINT": s.openapi_endpoint,
        "DINGTALK_OAPI_ENDPOINT": s.oapi_endpoint,
    }.items():
        monkeypatch.setenv(key, value)


def state(s: Settings) -> tuple[object, ...]:
    app = build(s)
    with Session(app.engine) as session:
        rows = tuple(
            sorted((p.id, p.name, p.role, p.unit_id, p.active, p.source) for p in session.exec(select(Person)))
        )
        events = len(session.exec(select(ContactEvent)).all())
    app.engine.dispose()
    return rows, events


def test_each_default_role_belongs_to_its_unit_kind() -> None:
    assert all(ROLE_UNIT_KINDS[role] == kind for kind, role in DEFAULT_ROLES.items())


async def test_sync_places_people_in_their_units_with_the_files_roles(
    tmp_path: Path, emulator_server: tuple[Emulator, TestServer]
) -> None:
    emulator, server = emulator_server
    directory(emulator)
    s = contact_settings(tmp_path, server)
    build(s).engine.dispose()
    changes = sync(build(s).engine, build(s).org, await fetch(s))
    found = people(s)
    assert (found["v001"].role, found["v001"].unit_name) == ("village_staff", "上洋村")
    assert (found["t101"].role, found["t101"].unit_name) == ("township_lead", "花园街道")
    assert (found["n001"].role, found["n001"].unit_name) == ("village_staff", "上洋村")
    assert (found["n002"].role, found["n002"].unit_name) == ("village_staff", "东港社区")
    assert (found["n003"].role, found["n003"].unit_name) == ("department", "区信访局")
    assert "n004" not in found
    assert sum(1 for pid in found if pid.startswith("m")) == MANY  # every page of user/list was read
    assert emulator.contacts.calls["/topapi/v2/user/list"] >= 2 + 5  # two pages for 上洋村, one per other dept
    assert {c.kind for c in changes} == {"added"} and len(changes) == 3 + MANY
    # A second sync finds nothing left to do.
    assert sync(build(s).engine, build(s).org, await fetch(s)) == []


async def test_org_diff_says_what_would_change_and_writes_nothing(
    tmp_path: Path,
    emulator_server: tuple[Emulator, TestServer],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emulator, server = emulator_server
    directory(emulator)
    s = contact_settings(tmp_path, server)
    sync(build(s).engine, build(s).org, await fetch(s))
    c = emulator.contacts
    c.remove_user("n001")  # left
    c.users["n002"].depts = [101]  # moved 东港社区 → 上洋村
    c.users["n003"].name = "孙小八"  # renamed
    c.add_user("n005", "吴十", 102, mobile="13900001111")  # added
    before = state(s)
    cli_env(s, monkeypatch)
    assert await asyncio.to_thread(main, ["org", "diff"]) == 0  # the emulator answers on this loop
    out = capsys.readouterr().out
    assert state(s) == before
    lines = out.strip().splitlines()
    assert any(line.startswith("离开 ") and "(n001)" in line for line in lines)
    assert any(line.startswith("调动 ") and "(n002)" in line and "东港社区 → " in line for line in lines)
    assert any(line.startswith("改名 ") and "(n003)" in line for line in lines)
    assert any(line.startswith("新增 ") and "(n005)" in line and "东港社区" in line for line in lines)
    assert "13900001111" not in out and "13812345678" not in out
    assert lines[-1].startswith("同步将做 4 项改动")
    assert await asyncio.to_thread(main, ["org", "sync"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("已同步 4 项改动")
    found = people(s)
    assert not found["n001"].active and found["n002"].unit_name == "上洋村"
    assert found["n003"].name == "孙小八" and found["n005"].active


async def test_a_wrong_token_or_missing_field_is_refused_as_dingtalk_does(
    emulator_server: tuple[Emulator, TestServer],
) -> None:
    emulator, server = emulator_server
    directory(emulator)
    url = server.make_url("/topapi/v2/user/list")
    from aiohttp import ClientSession

    async with ClientSession() as http:
        async with http.post(
            url, params={"access_token": "forged"}, json={"dept_id": 101, "cursor": 0, "size": 10}
        ) as r:
            assert (r.status, (await r.json())["errcode"]) == (200, 40014)
        async with http.post(
            server.make_url("/v1.0/oauth2/accessToken"), json={"appKey": "sandbox-id", "appSecret": "sandbox-secret"}
        ) as r:
            token = (await r.json())["accessToken"]
        async with http.post(url, params={"access_token": token}, json={"dept_id": 101, "size": 10}) as r:
            assert (await r.json())["errcode"] == 400002
        async with http.post(url, params={"access_token": token}, json={"dept_id": 101, "cursor": 0, "size": 101}) as r:
            assert (await r.json())["errcode"] == 400002
        async with http.post(url, params={"access_token": token}, json={"dept_id": 999, "cursor": 0, "size": 10}) as r:
            assert (await r.json())["errcode"] == 60003


@pytest.fixture
async def contact_rig(tmp_path: Path, emulator_server: tuple[Emulator, TestServer]) -> AsyncIterator[Rig]:
    emulator, server = emulator_server
    directory(emulator)
    s = contact_settings(tmp_path, server)
    app = build(s)
    sync(app.engine, app.org, await fetch(s))
    runtime = await start_runtime(app, server)
    await emulator.wait_for(lambda: len(emulator.connections) == 1)
    yield Rig(emulator, server, app, runtime)
    await runtime.stop()
    app.engine.dispose()


async def post(rig: Rig, staff_id: str, text: str) -> str:
    """What the bot answered in 上洋村's group."""
    before = len(rig.emulator.sent)
    await rig.emulator.deliver(rig.payload(text, staff_id=staff_id))
    await rig.emulator.wait_for(lambda: len(rig.emulator.sent) > before)
    return rig.emulator.sent[before].text


async def acked(rig: Rig, message_id: str) -> None:
    await rig.emulator.wait_for(lambda: message_id in rig.emulator.acks)
    assert rig.emulator.acks[message_id] == 200


async def test_user_leave_org_takes_every_right_before_the_next_message(contact_rig: Rig) -> None:
    rig = contact_rig
    assert rig.emulator.contacts.event_subscribers == 1  # the bot asked DingTalk for EVENT frames
    await acked(rig, await rig.emulator.contacts.leave("n001"))
    reply = await post(rig, "n001", "上洋村3组路灯坏了两个月没人修,请尽快处理。")
    assert "未登记" in reply
    assert rig.count(Issue) == 0
    assert "已登记 #" in await post(rig, "v001", "上洋村3组路灯坏了两个月没人修,请尽快处理。")


async def test_a_repeated_contact_event_applies_once(contact_rig: Rig) -> None:
    rig = contact_rig
    c = rig.emulator.contacts
    await acked(rig, await c.leave("n001", event_id="ev-leave-1"))
    c.add_user("n001", "赵六", 101)  # back in DingTalk: user_add_org, the person fetched and placed
    await acked(rig, await c.push_event("user_add_org", {"userId": ["n001"]}, "ev-add-1"))
    await acked(rig, await c.push_event("user_leave_org", {"userId": ["n001"]}, "ev-leave-1"))  # the old one again
    assert "已登记 #" in await post(rig, "n001", "上洋村3组路灯坏了两个月没人修,请尽快处理。")
    with Session(rig.app.engine) as session:
        kinds = [e.event_type for e in session.exec(select(ContactEvent).where(ContactEvent.event_type != "org_sync"))]
    assert sorted(kinds) == ["user_add_org", "user_leave_org"]


async def test_user_modify_org_moves_a_dingtalk_person_to_the_new_unit(contact_rig: Rig) -> None:
    rig = contact_rig
    c = rig.emulator.contacts
    c.users["n002"].depts = [101]
    await acked(rig, await c.push_event("user_modify_org", {"userId": ["n002"]}))
    with Session(rig.app.engine) as session:
        person = session.get(Person, "n002")
        assert person is not None
        unit = session.get(Unit, person.unit_id)
        assert unit is not None and unit.name == "上洋村"


@pytest.mark.parametrize(
    ("value", "reason"), [('"一百"', "应为钉钉部门 ID"), ("0", "应为钉钉部门 ID"), ("100", "同时对应两个单位")]
)
def test_a_bad_dingtalk_dept_is_refused_with_its_line(tmp_path: Path, value: str, reason: str) -> None:
    path = tmp_path / "org.yaml"
    path.write_text(ORG.replace("{name: 东港社区}", f"{{name: 东港社区, dingtalk_dept: {value}}}"), encoding="utf-8")
    with pytest.raises(OrgError, match=f"第8行: .*{reason}"):
        load_org(path)


def test_someone_who_left_is_not_found_by_union_id_either(tmp_path: Path) -> None:
    app = build(settings(tmp_path, write_org(tmp_path)))
    with unit_of_work(app.engine) as session:
        person = session.get(Person, "v001")
        assert person is not None
        person.union_id, person.active = "union-v001", False
    with Session(app.engine) as session:
        assert find_sender(session, None, "union-v001", None) is None
        assert find_sender(session, "v001", None, None) is None
        assert find_sender(session, "t101", None, None) is not None
    app.engine.dispose()


async def test_a_contact_list_with_nobody_in_it_changes_nothing(
    tmp_path: Path,
    emulator_server: tuple[Emulator, TestServer],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An app without contact permission sees nobody: that must not read as everyone leaving."""
    _emulator, server = emulator_server
    s = contact_settings(tmp_path, server)
    before = state(s)
    cli_env(s, monkeypatch)
    assert await asyncio.to_thread(main, ["org", "sync"]) == 1
    assert "未做任何改动" in capsys.readouterr().err
    assert state(s) == before
