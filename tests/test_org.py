"""bot.org (load_org, OrgError, sync_org) and models.directory (Directory.resolve)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlmodel import select

from bot.org import OrgError, load_org, sync_org
from models.db import make_engine, migrate, unit_of_work
from models.directory import AmbiguousUnit
from models.tables import GroupBinding, Person, Unit
from models.vocabulary import ROLES
from tests.databases import database_url

# Line numbers matter: the tests below refer to them.
BASE = """\
district: {name: 柯城区}
townships:
  - name: 航埠镇
    aliases: [航埠]
    villages:
      - {name: 新村}
      - {name: 北二村}
  - name: 石梁镇
    aliases: [石梁]
    villages:
      - {name: 新村}
people:
  - {id: "a1", name: 甲, role: admin, unit: 柯城区}
  - {id: "v1", name: 乙, role: village_staff, unit: 航埠镇/新村}
groups:
  - {conversation_id: "cid-1", unit: 航埠镇}
"""
V1 = '  - {id: "v1", name: 乙, role: village_staff, unit: 航埠镇/新村}'


@pytest.fixture(scope="module")
def org():
    return load_org()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "org.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_sample_loads(org) -> None:
    kinds = Counter(u.kind for u in org.units)
    assert kinds["district"] == 1
    assert kinds["township"] == 18
    assert kinds["department"] == 10
    assert {p.role for p in org.people} == set(ROLES)
    assert len({p.id for p in org.people}) == len(org.people) == 21
    assert [g[:2] for g in org.groups][-1] == ("cid-shangyang", "花园街道/上洋村")


@pytest.mark.parametrize(
    ("label", "name", "kind", "parent"),
    [
        ("柯城区", "柯城区", "district", None),
        ("柯城", "柯城区", "district", None),
        ("花园街道", "花园街道", "township", "柯城区"),
        ("花园", "花园街道", "township", "柯城区"),
        ("上洋村", "上洋村", "village", "花园街道"),
        ("上洋", "上洋村", "village", "花园街道"),
        (" 黄塘 ", "黄塘村", "village", "黄家街道"),
        ("花园街道/上洋村", "上洋村", "village", "花园街道"),
        ("航埠镇/新村", "新村", "village", "航埠镇"),
        ("石梁/新村", "新村", "village", "石梁镇"),
        ("资规局", "区自然资源局", "department", "柯城区"),
    ],
)
def test_resolve(org, label: str, name: str, kind: str, parent: str | None) -> None:
    d = org.directory
    unit = d.resolve(label)
    assert unit is not None
    assert (unit.name, unit.kind) == (name, kind)
    assert (d.get(unit.parent_id).name if unit.parent_id else None) == parent


def test_resolve_bare_duplicate_village_is_ambiguous(org) -> None:
    d = org.directory
    with pytest.raises(AmbiguousUnit) as exc:
        d.resolve("新村")
    assert exc.value.name == "新村"
    assert len(exc.value.candidates) == 2
    assert sorted(d.get(c.parent_id).name for c in exc.value.candidates) == ["石梁镇", "航埠镇"]


@pytest.mark.parametrize("label", ["不存在村", "", "航埠镇/上洋村", "不存在镇/新村", "花园街道/不存在村"])
def test_resolve_unknown_is_none(org, label: str) -> None:
    assert org.directory.resolve(label) is None


def test_base_file_loads(tmp_path: Path) -> None:
    org = load_org(write(tmp_path, BASE))
    assert [p.id for p in org.people] == ["a1", "v1"]
    assert [p.line for p in org.people] == [13, 14]
    assert org.groups == [("cid-1", "航埠镇", 16)]


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        (BASE.replace('"v1", name', '"v1" name'), 14, "YAML 格式错误"),
        (BASE.replace("航埠镇/新村", "大山村"), 14, "未知单位「大山村」"),
        (BASE.replace("role: village_staff", "role: boss"), 14, "角色「boss」无效"),
        (BASE.replace('id: "v1"', 'id: "a1"'), 14, "人员 id「a1」重复"),
        (BASE.replace("航埠镇/新村", "新村"), 14, "单位「新村」有重名"),
        (BASE.replace("name: 乙, ", ""), 14, "缺少姓名"),
        (BASE.replace(V1, '  - {id: "v1", name: "  ", role: village_staff, unit: 北二村}'), 14, "缺少姓名"),
        (BASE.replace("district: {name: 柯城区}\n", ""), 1, "缺少 district"),
        (BASE.replace('conversation_id: "cid-1", ', ""), 16, "群缺少 conversation_id"),
        (BASE.replace("- {name: 北二村}", "- {aliases: [北二]}"), 7, "缺少名称"),
    ],
    ids=[
        "yaml",
        "unknown-unit",
        "role",
        "dup-id",
        "ambiguous-unit",
        "no-name",
        "blank-name",
        "no-district",
        "no-cid",
        "unnamed-village",
    ],
)
def test_bad_file(tmp_path: Path, text: str, line: int, reason: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(OrgError) as exc:
        load_org(path)
    message = str(exc.value)
    assert str(path) in message
    assert f"第{line}行" in message
    assert reason in message


def test_duplicate_alias_across_townships_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OrgError, match="名称或别名「航埠」同时指向「航埠镇」和「石梁镇」"):
        load_org(write(tmp_path, BASE.replace("[石梁]", "[航埠]")))


def test_duplicate_alias_across_townships_names_its_line(tmp_path: Path) -> None:
    with pytest.raises(OrgError, match="第8行"):
        load_org(write(tmp_path, BASE.replace("[石梁]", "[航埠]")))


def test_nonexistent_file(tmp_path: Path) -> None:
    with pytest.raises(OrgError, match="无法读取组织架构文件"):
        load_org(tmp_path / "missing.yaml")


@pytest.fixture
def engine(tmp_path: Path):
    engine = make_engine(database_url(tmp_path, "x"))
    migrate(engine)
    yield engine
    engine.dispose()


def test_sync_org_writes_units_people_and_groups(engine, org) -> None:
    with unit_of_work(engine) as s:
        directory = sync_org(s, org)
    with unit_of_work(engine) as s:
        units = s.exec(select(Unit)).all()
        people = {p.id: p for p in s.exec(select(Person)).all()}
        groups = {g.conversation_id: g.unit_id for g in s.exec(select(GroupBinding)).all()}
    assert len(units) == len(org.units)
    assert len(people) == 21
    by_id = {u.id: u for u in units}
    zhang = people["v001"]
    assert (zhang.name, zhang.role, by_id[zhang.unit_id].name, zhang.source) == (
        "张三",
        "village_staff",
        "上洋村",
        "file",
    )
    assert by_id[by_id[zhang.unit_id].parent_id].name == "花园街道"
    assert (zhang.union_id, zhang.dingtalk_id) == ("union-v001", "$:LWCP_v1:$v001")
    assert by_id[people["v004"].unit_id].parent_id != by_id[people["v005"].unit_id].parent_id
    assert by_id[groups["cid-shangyang"]].name == "上洋村"
    assert by_id[groups["cid-hangbu"]].name == "航埠镇"
    assert directory.resolve("航埠镇/新村").id == people["v004"].unit_id
    assert directory.resolve("资规局").kind == "department"


def test_sync_org_twice_creates_no_duplicates(engine, org) -> None:
    for _ in range(2):
        with unit_of_work(engine) as s:
            sync_org(s, org)
    with unit_of_work(engine) as s:
        units = s.exec(select(Unit)).all()
        assert len(units) == len(org.units)
        assert len({(u.parent_id, u.name) for u in units}) == len(units)
        assert len(s.exec(select(Person)).all()) == 21
        assert len(s.exec(select(GroupBinding)).all()) == 5


def test_sync_org_keeps_a_person_changed_in_chat(engine, org) -> None:
    with unit_of_work(engine) as s:
        sync_org(s, org)
    with unit_of_work(engine) as s:
        for pid in ("v001", "v002"):
            person = s.get(Person, pid)
            person.role = "township_staff"
            person.source = "chat" if pid == "v001" else "file"
            s.add(person)
    with unit_of_work(engine) as s:
        sync_org(s, org)
    with unit_of_work(engine) as s:
        assert (s.get(Person, "v001").role, s.get(Person, "v001").source) == ("township_staff", "chat")
        assert s.get(Person, "v002").role == "village_staff"  # a file-sourced row follows the file again


def test_members_and_duty_leads(tmp_path: Path) -> None:
    lead = '  - {id: "d1", name: 丙, role: district_lead, unit: 柯城区}\n'
    text = BASE.replace(V1 + "\n", V1 + "\n" + lead).replace(
        '{conversation_id: "cid-1", unit: 航埠镇}', '{conversation_id: "cid-1", unit: 航埠镇, members: ["a1", "d1"]}'
    )
    org = load_org(write(tmp_path, text + 'duty_leads: ["d1"]\n'))
    assert org.members == {"cid-1": ("a1", "d1")} and org.duty_leads == ("d1",)
    assert load_org(write(tmp_path, text)).duty_leads == ()  # unset: every district lead
    with pytest.raises(OrgError, match="duty_leads 应为区领导"):
        load_org(write(tmp_path, text + 'duty_leads: ["v1"]\n'))
    with pytest.raises(OrgError, match="members 应为已登记人员"):
        load_org(write(tmp_path, text.replace('members: ["a1", "d1"]', 'members: ["x9"]')))
