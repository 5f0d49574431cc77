"""The organisation file: load and validate it once into a typed `Org` (refusing a bad file with
its line and reason), and write it into the database."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from sqlmodel import Session, select

from models.audience import sync_members
from models.calendar import CalendarConfig, parse_calendar
from models.directory import AmbiguousUnit, Directory, UnitInfo
from models.tables import GroupBinding, Person, Unit
from models.vocabulary import ROLES
from schedules.config import ScheduleConfig, parse_schedule

SAMPLE = Path(__file__).parent / "data" / "org.sample.yaml"


class OrgError(ValueError):
    """A bad organisation file: message names the file, the line and the reason."""


@dataclass
class PersonSpec:
    id: str
    name: str
    role: str
    unit: str
    union_id: str | None = None
    dingtalk_id: str | None = None
    line: int = 0


class GroupSpec(NamedTuple):
    """A group bound to a unit (by name, as in the file)."""

    conversation_id: str
    unit: str
    line: int


@dataclass(frozen=True)
class RobotConfig:
    """A custom group robot; the signing secret is read from the named environment variable."""

    webhook: str
    secret_env: str | None = None


@dataclass(frozen=True)
class ApiToken:
    """A dashboard/API token: only its SHA-256 is kept, bound to a unit (by name, as in the file)."""

    sha256: str
    unit: str
    note: str | None = None
    line: int = 0


@dataclass
class Org:
    """The org file, parsed once: consumers take these typed sections (`raw` is the mapping as
    read, kept for reference only)."""

    path: Path
    units: list[UnitInfo]  # provisional ids (1..n) in file order: district, townships, villages, departments
    people: list[PersonSpec] = field(default_factory=list)
    groups: list[GroupSpec] = field(default_factory=list)
    robots: dict[str, RobotConfig] = field(default_factory=dict)  # conversation_id -> its custom robot
    members: dict[str, tuple[str, ...]] = field(default_factory=dict)  # conversation_id -> its `members:` list
    duty_leads: tuple[str, ...] = ()  # `duty_leads:` who takes an escalation to the district (all leads if empty)
    api_tokens: list[ApiToken] = field(default_factory=list)
    calendar: CalendarConfig = field(default_factory=CalendarConfig)  # the optional `calendar:` section
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)  # the optional `schedule:` section
    # `dingtalk_dept: <id>` on a unit: which DingTalk department is this unit (bot.contacts).
    dingtalk_depts: dict[int, int] = field(default_factory=dict)  # DingTalk dept_id -> unit id (as in `units`)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def directory(self) -> Directory:
        return Directory({u.id: u for u in self.units})

    @property
    def secret_envs(self) -> tuple[str, ...]:
        """The environment variables the custom robots' signing secrets are read from."""
        return tuple(dict.fromkeys(r.secret_env for r in self.robots.values() if r.secret_env))


class _LineLoader(yaml.SafeLoader):
    pass


class _Map(dict[Any, Any]):
    line = 0


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> _Map:
    m = _Map(loader.construct_mapping(node, deep=True))
    m.line = node.start_mark.line + 1
    return m


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)


class _Seq(list[Any]):
    lines: list[int]  # the line of each item: a scalar item has no line of its own


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode) -> _Seq:
    s = _Seq(loader.construct_sequence(node, deep=True))
    s.lines = [item.start_mark.line + 1 for item in node.value]
    return s


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)


def _construct_date(loader: _LineLoader, node: yaml.ScalarNode) -> Any:
    # An unquoted 2020-02-30 (in calendar:) would escape as a bare ValueError, without its line.
    try:
        return loader.construct_yaml_timestamp(node)
    except ValueError as e:
        raise yaml.constructor.ConstructorError(None, None, f"无效日期「{node.value}」", node.start_mark) from e


_LineLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_date)


def load_org(path: str | Path | None = None) -> Org:
    path = Path(path) if path else SAMPLE
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise OrgError(f"{path}: 无法读取组织架构文件 ({e.__class__.__name__})") from e
    try:
        raw = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"第{mark.line + 1}行" if mark else "未知位置"
        raise OrgError(f"{path} {where}: YAML 格式错误 ({getattr(e, 'problem', e)})") from e
    return _validate(path, raw)


def _validate(path: Path, raw: Any) -> Org:
    def fail(line: int, reason: str) -> OrgError:
        return OrgError(f"{path} 第{line}行: {reason}")

    if not isinstance(raw, dict):
        raise fail(1, "顶层应为映射(district/townships/departments/people/groups)")
    units: list[UnitInfo] = []
    lines: dict[int, int] = {}  # unit id -> the line it was declared on
    depts: dict[int, int] = {}

    def add(item: Any, kind: str, parent: int | None, what: str) -> int:
        line = getattr(item, "line", 1)
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"].strip():
            raise fail(line, f"{what}缺少名称(name)")
        aliases = item.get("aliases") or []
        if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
            raise fail(line, f"{what}「{item['name']}」的别名(aliases)应为字符串列表")
        siblings = {u.name for u in units if u.parent_id == parent}
        if item["name"] in siblings:
            raise fail(line, f"{what}「{item['name']}」重复")
        units.append(UnitInfo(len(units) + 1, item["name"].strip(), kind, parent, tuple(a.strip() for a in aliases)))
        lines[len(units)] = line
        dept = item.get("dingtalk_dept")
        if dept is not None:
            if isinstance(dept, bool) or not isinstance(dept, int) or dept < 1:
                raise fail(line, f"{what}「{item['name']}」的 dingtalk_dept 应为钉钉部门 ID(正整数)")
            if dept in depts:
                raise fail(line, f"钉钉部门 {dept} 同时对应两个单位")
            depts[dept] = len(units)
        return len(units)

    if "district" not in raw:
        raise fail(1, "缺少 district(区)")
    district_id = add(raw["district"], "district", None, "区")
    townships = raw.get("townships") or []
    if not isinstance(townships, list):
        raise fail(getattr(raw, "line", 1), "townships 应为列表")
    for t in townships:
        tid = add(t, "township", district_id, "乡镇(街道)")
        villages = t.get("villages") or []
        if not isinstance(villages, list):
            raise fail(t.line, f"乡镇「{t['name']}」的 villages 应为列表")
        for v in villages:
            add(v, "village", tid, "村(社区)")
    for d in raw.get("departments") or []:
        add(d, "department", district_id, "部门")

    # A label may name two units only where both are villages (then `乡镇/村` is required).
    seen: dict[str, UnitInfo] = {}
    for u in units:
        for label in {u.name, *u.aliases}:
            other = seen.get(label)
            if other and not (other.kind == u.kind == "village"):
                raise fail(lines[u.id], f"名称或别名「{label}」同时指向「{other.name}」和「{u.name}」")
            seen[label] = u
    org = Org(path=path, units=units, raw=raw, dingtalk_depts=depts)
    directory = org.directory

    def resolve(name: Any, line: int) -> UnitInfo:
        if not isinstance(name, str):
            raise fail(line, "缺少单位(unit)")
        try:
            unit = directory.resolve(name)
        except AmbiguousUnit as e:
            raise fail(line, f"单位「{name}」有重名,请写成「乡镇/村」") from e
        if unit is None:
            raise fail(line, f"未知单位「{name}」")
        return unit

    ids: set[str] = set()
    for p in raw.get("people") or []:
        line = getattr(p, "line", 1)
        if not isinstance(p, dict) or p.get("id") in (None, ""):
            raise fail(line, "人员缺少 id(钉钉 staffId)")
        pid = str(p["id"])
        if pid in ids:
            raise fail(line, f"人员 id「{pid}」重复")
        ids.add(pid)
        if not isinstance(p.get("name"), str) or not p["name"].strip():
            raise fail(line, f"人员「{pid}」缺少姓名(name)")
        if p.get("role") not in ROLES:
            raise fail(line, f"人员「{pid}」的角色「{p.get('role')}」无效,应为 {', '.join(ROLES)} 之一")
        resolve(p.get("unit"), line)
        org.people.append(
            PersonSpec(pid, p["name"].strip(), p["role"], p["unit"], _opt(p, "union_id"), _opt(p, "dingtalk_id"), line)
        )
    conversations: set[str] = set()
    for g in raw.get("groups") or []:
        line = getattr(g, "line", 1)
        cid = g.get("conversation_id") if isinstance(g, dict) else None
        if not isinstance(cid, str) or not cid:
            raise fail(line, "群缺少 conversation_id")
        if cid in conversations:
            raise fail(line, f"群「{cid}」重复")
        conversations.add(cid)
        resolve(g.get("unit"), line)
        org.groups.append(GroupSpec(cid, g["unit"], line))
        robot = g.get("robot")
        if robot is not None:
            if not isinstance(robot, dict) or not str(robot.get("webhook", "")).startswith(("http://", "https://")):
                raise fail(line, f"群「{cid}」的 robot 应写成 {{webhook: https://…, secret_env: 环境变量名}}")
            org.robots[cid] = RobotConfig(str(robot["webhook"]), _opt(robot, "secret_env"))
        listed = g.get("members")
        if listed is not None:
            if not isinstance(listed, list) or not all(str(x) in ids for x in listed):
                raise fail(line, f"群「{cid}」的 members 应为已登记人员 id 的列表")
            org.members[cid] = tuple(dict.fromkeys(str(x) for x in listed))
    duty = raw.get("duty_leads")
    if duty is not None:
        district_leads = {p.id for p in org.people if p.role == "district_lead"}
        if not isinstance(duty, list) or not all(str(x) in district_leads for x in duty):
            raise fail(getattr(raw, "line", 1), "duty_leads 应为区领导(district_lead)人员 id 的列表")
        org.duty_leads = tuple(dict.fromkeys(str(x) for x in duty))
    _api_tokens(org, raw, fail, resolve)

    def section(key: str, parse: Callable[[Any], Any]) -> Any:  # the optional calendar: and schedule:
        try:
            return parse(raw.get(key))
        except ValueError as e:
            raise fail(getattr(raw.get(key), "line", getattr(raw, "line", 1)), str(e)) from e

    org.calendar = section("calendar", parse_calendar)
    org.schedule = section("schedule", parse_schedule)
    return org


def _api_tokens(
    org: Org, raw: Any, fail: Callable[[int, str], OrgError], resolve: Callable[[Any, int], UnitInfo]
) -> None:
    """Optional `api_tokens: [{sha256, unit, note}]`; a raw token never belongs in the file."""
    tokens = raw.get("api_tokens") or []
    if not isinstance(tokens, list):
        raise fail(getattr(raw, "line", 1), "api_tokens 应为列表")
    seen: set[str] = set()
    lines = getattr(tokens, "lines", [])
    for i, t in enumerate(tokens):
        line = lines[i] if i < len(lines) else getattr(raw, "line", 1)
        if not isinstance(t, dict):
            raise fail(line, "api_tokens 每项应写成 {sha256: …, unit: …, note: …}")
        digest = t.get("sha256")
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", digest.strip()):
            raise fail(line, "API 令牌的 sha256 应为 64 位十六进制摘要(用 liandong token new 生成)")
        digest = digest.strip().lower()
        if digest in seen:
            raise fail(line, "API 令牌重复")
        seen.add(digest)
        resolve(t.get("unit"), line)
        note = t.get("note")
        if note is not None and not isinstance(note, str):
            raise fail(line, "API 令牌的备注(note)应为文字")
        org.api_tokens.append(ApiToken(digest, t["unit"], note or None, line))


def _opt(item: dict[str, Any], key: str) -> str | None:
    value = item.get(key)
    return str(value) if value not in (None, "") else None


def sync_org(session: Session, org: Org) -> Directory:
    """Write the file's units, people and groups into the database. Units are matched by
    (parent, name); people and groups changed in chat by an admin keep the chat's version."""
    file_dir = org.directory
    db_ids: dict[int, int] = {}
    existing = {(u.parent_id, u.name): u for u in session.exec(select(Unit)).all()}
    for info in org.units:  # parents come before children in file order
        parent = db_ids.get(info.parent_id) if info.parent_id else None
        row = existing.get((parent, info.name))
        if row is None:
            row = Unit(name=info.name, kind=info.kind, parent_id=parent, aliases=list(info.aliases))
        else:
            row.kind, row.aliases = info.kind, list(info.aliases)
        session.add(row)
        session.flush()
        assert row.id is not None
        db_ids[info.id] = row.id
    for spec in org.people:
        unit_id = db_ids[file_dir.resolve(spec.unit).id]  # type: ignore[union-attr]
        person = session.get(Person, spec.id)
        if person is None:
            person = Person(id=spec.id, name=spec.name, role=spec.role, unit_id=unit_id)
        elif person.source != "file":
            continue
        person.name, person.role, person.unit_id = spec.name, spec.role, unit_id
        person.union_id, person.dingtalk_id = spec.union_id, spec.dingtalk_id
        session.add(person)
    for cid, unit_name, _line in org.groups:
        unit_id = db_ids[file_dir.resolve(unit_name).id]  # type: ignore[union-attr]
        binding = session.get(GroupBinding, cid)
        if binding is None:
            session.add(GroupBinding(conversation_id=cid, unit_id=unit_id))
        elif binding.source == "file":
            binding.unit_id = unit_id
            session.add(binding)
    session.flush()
    sync_members(session, org.members)
    return Directory.load(session)
