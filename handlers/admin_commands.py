"""Admin verbs: 绑定 (this group → a unit) and 角色 (a person's role and unit); only admins
may use them (their rows in handlers/verbs.py)."""

from __future__ import annotations

from handlers.context import Context, Refusal
from handlers.replies import Reply, Result
from models import queries as q
from models.directory import AmbiguousUnit, UnitInfo
from models.tables import GroupBinding, Person
from models.vocabulary import ROLE_ALIASES, ROLE_NAMES, ROLE_UNIT_KINDS, UNIT_KIND_NAMES


def _unit(ctx: Context, name: str) -> UnitInfo:
    try:
        unit = ctx.directory.resolve(name)
    except AmbiguousUnit as e:
        options = "、".join(f"{ctx.directory.get(c.parent_id).name}/{c.name}" for c in e.candidates if c.parent_id)
        raise Refusal(f"「{name}」有重名,请写成:{options}。") from e
    if unit is None:
        raise Refusal(f"未知单位「{name}」,请用组织架构中的名称。")
    return unit


def bind(ctx: Context) -> Result:
    name = ctx.cmd.args.strip()
    if not name:
        raise Refusal("请写明单位,如「绑定 花园街道」。")
    unit = _unit(ctx, name)
    if ctx.msg.conversation_type != "2":
        raise Refusal("绑定需在群里操作。")
    row = q.binding(ctx.session, ctx.msg.conversation_id) or GroupBinding(
        conversation_id=ctx.msg.conversation_id, unit_id=unit.id
    )
    row.unit_id, row.source = unit.id, "chat"
    ctx.session.add(row)
    return Result(Reply(f"本群已绑定到{ctx.directory.full_name(unit)}。"))


def set_role(ctx: Context) -> Result:
    mentioned = ctx.msg.mentioned()
    words = ctx.cmd.args.split()
    if not mentioned or not words:
        raise Refusal("请@人员并写明角色,如「角色 @张三 村干部 上洋村」。")
    role = ROLE_ALIASES.get(words[0])
    if role is None:
        raise Refusal(f"未知角色「{words[0]}」,可选:{'、'.join(ROLE_NAMES.values())}。")
    target = mentioned[0]
    person = q.find_sender(ctx.session, target.staff_id, target.union_id, target.dingtalk_id)
    unit = _unit(ctx, words[1]) if len(words) > 1 else None
    if person is None:
        if unit is None or not target.staff_id:
            raise Refusal("此人尚未登记,请同时写明单位,如「角色 @张三 村干部 上洋村」。")
        person = Person(id=target.staff_id, name=target.staff_id, role=role, unit_id=unit.id)
    unit = unit or ctx.directory.get(person.unit_id)
    expected = ROLE_UNIT_KINDS.get(role)
    if expected and unit.kind != expected:
        raise Refusal(f"{ROLE_NAMES[role]}的单位应为{UNIT_KIND_NAMES[expected]}。")
    person.role, person.unit_id, person.source = role, unit.id, "chat"
    ctx.session.add(person)
    return Result(Reply(f"已将{person.name}设为{ctx.directory.full_name(unit)}{ROLE_NAMES[role]}。"))
