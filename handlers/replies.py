"""Every sentence the bot says, in one place: short, Chinese, phone-sized, masked."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from models.clock import local, short_date
from models.events import EVENT_NAMES, Kind
from models.facts import tuesday_counted
from models.masking import mask
from models.rules import days_overdue
from models.tables import Issue, IssueEvent, Person
from models.vocabulary import LEVEL_NAMES, STATUS_NAMES, Level, Litigation, Status


@dataclass(frozen=True)
class Reply:
    text: str
    at: tuple[str, ...] = ()  # staffIds to @-mention
    title: str = "两难助手"
    step: str | None = None  # the one-tap step it asks for (models/cards.py Step): a card where configured


@dataclass(frozen=True)
class Notice:
    """A message to another place: the groups bound to a unit, or one conversation."""

    text: str
    at: tuple[str, ...] = ()
    unit_id: int | None = None
    conversation_id: str | None = None
    key: str = "notice"  # distinguishes several notices caused by one message
    step: str | None = None  # the one-tap step it asks for (models/cards.py Step): a card where configured


@dataclass
class Result:
    reply: Reply
    notices: list[Notice] = field(default_factory=list)
    issue_id: int | None = None


def resolved_word(level: str) -> str:
    """As the district reports it: 化解 at the district, 办结 below it."""
    return "化解" if level == Level.DISTRICT else "办结"


def status_name(status: str, level: str) -> str:
    return f"已{resolved_word(level)}" if status == Status.RESOLVED else STATUS_NAMES[status]


def event_name(kind: str, level: str, data: dict[str, Any]) -> str:
    """A timeline step's label: the level's word for a resolution, and a reopening that the
    reporter's 不满意 caused named as the failed 回访 it is."""
    if kind == Kind.RESOLVED:
        return resolved_word(level)
    if kind == Kind.REOPENED and data.get("by") == "reporter":
        return "回访不满意"
    return EVENT_NAMES.get(kind, kind)


def mention(people: Iterable[Person]) -> str:
    return " ".join(f"@{p.name}" for p in people)


def receipt(
    issue: Issue, place: str, category_line: str, duplicates: list[int], ambiguous: tuple[str, ...] = ()
) -> str:
    """What was registered and what was understood, so the sender can correct it with 改."""
    lines = [f"已登记 #{issue.id}【{place}】{issue.title}", category_line]
    if ambiguous:
        name = ambiguous[0].partition("/")[2]
        lines.append(f"「{name}」有重名({'、'.join(ambiguous)}),请回复「改 #{issue.id} 村={ambiguous[0]}」指明。")
    else:
        lines.append(f"有误请回复「改 #{issue.id} 村=… 类别=…」。")
    if issue.level == Level.VILLAGE:
        lines.append(f"当前在村级处理。需要乡镇协调请回复「上报 #{issue.id}」。")
    for dup in duplicates[:1]:
        lines.append(f"(可能与 #{dup} 重复 — 如是请回复「合并 #{dup} #{issue.id}」)")
    return "\n".join(lines)


def litigation_tag(issue: Issue) -> str:
    """ "⚠ 行政败诉风险" / "⚠ 疑似行政败诉风险", or "" when there is none."""
    label = Litigation.of(issue.litigation_risk, issue.litigation_suspected).label
    return f"⚠ {label}" if label else ""


def facts_line(issue: Issue) -> str:
    parts = [f"类别 {issue.category}"]
    if litigation := litigation_tag(issue):
        parts.append(litigation)
    if issue.phones:
        parts.append("电话 " + "、".join(mask(p) for p in issue.phones))
    if issue.has_id_number:
        parts.append("含身份证号(已隐藏)")
    if issue.requested_deadline:
        parts.append(f"要求 {short_date(issue.requested_deadline)}前")
    return " · ".join(parts)


def amended(issue: Issue, place: str) -> str:
    return f"#{issue.id} 已更正:【{place}】{issue.title}\n{facts_line(issue)}"


def pictures_attached(issue: Issue, count: int) -> str:
    return f"已将 {count} 张照片附到 #{issue.id}。"


NO_PICTURE = "没有收到图片,请重新发送。"
PICTURE_TOO_LATE = (
    "照片需在「上报」或「反馈」后10分钟内由本人发送;请先「反馈 #12 说明」,再发照片。"
    "在群里,照片请与文字一起发送(同一条消息内@我)或在与我的单聊中发送。"
)


def deadline_text(d: date | None) -> str:
    return f"截止 {short_date(d)}" if d else "未设截止日期"


CARD_EVENTS = 3  # the latest steps 查 shows; the card stays within 8 lines


def card(
    issue: Issue,
    place: str,
    owner: Person | None,
    department: str | None,
    events: list[IssueEvent],
    names: dict[str, str],
) -> str:
    head = f"#{issue.id}【{place}】{issue.title}"
    state = f"{LEVEL_NAMES[issue.level]} · {status_name(issue.status, issue.level)}"
    if issue.risk:
        state += f" · 风险 {issue.risk}"
    lines = [head, state, facts_line(issue)]
    handling = []
    if owner or department:
        handling.append("包案 " + " · ".join(x for x in (owner and owner.name, department) if x))
    if issue.deadline:
        handling.append(deadline_text(issue.deadline))
    if tuesday_counted(issue, events):  # as counted, not only as tagged (PRODUCT §2)
        handling.append("周二无会日")
    pictures = sum(len(ev.data.get("codes") or ()) for ev in events if ev.kind == Kind.PICTURE)
    if pictures:
        handling.append(f"照片 {pictures} 张")
    if handling:
        lines.append(" · ".join(handling))
    # One phone screen: the latest steps only; the case page has the whole timeline.
    for ev in events[-CARD_EVENTS:]:
        at = local(ev.at)
        note = ev.data.get("reason") or ev.data.get("opinion") or ev.data.get("text") or ev.data.get("result") or ""
        note = mask(note)[:24]
        step = f"{names.get(ev.actor_id, ev.actor_id)} {event_name(ev.kind, ev.level, ev.data)}"
        lines.append(f"{at.month}/{at.day} {at:%H:%M} {step}" + (f":{note}" if note else ""))
    if len(events) > CARD_EVENTS:
        lines.append(f"(共 {len(events)} 条进程,完整时间线见看板)")
    return "\n".join(lines)


def issue_line(issue: Issue, place: str, today: date) -> str:
    tail = status_name(issue.status, issue.level)
    if late := days_overdue(issue.status, issue.deadline, today):
        tail += f" · 逾期{late}天"
    return f"#{issue.id} {issue.title}({place})· {tail}"
