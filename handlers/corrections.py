"""改 #12 村=上洋村 类别=劳资纠纷: the sender or a lead corrects what intake understood.
Recorded as an `amended` event. A place may only be corrected within the unit that handles
the issue now (moving an issue elsewhere is 上报 or 退回, not a correction)."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from handlers import replies as r
from handlers.context import Context, Refusal
from handlers.intake import CATEGORIES, TITLE_LENGTH
from handlers.intake.due import deadline_in
from handlers.issue_commands import place
from handlers.replies import Reply, Result
from models.directory import AmbiguousUnit, UnitInfo
from models.events import Kind
from models.lifecycle import record
from models.masking import mask
from models.tables import Issue
from models.vocabulary import Litigation, Status

USAGE = "改 #12 村=上洋村 类别=劳资纠纷"
# What the sender may write before = (or :), for each correctable field.
_KEYS = {
    "village": ("村(社区)", "村社区", "社区", "村"),
    "township": ("乡镇(街道)", "乡镇街道", "乡镇", "街道", "镇", "乡"),
    "category": ("类别", "分类", "类型"),
    "title": ("标题",),
    "litigation_risk": ("行政败诉风险", "败诉风险"),
    "requested_deadline": ("要求期限", "期限"),
}
_WORD_TO_KEY = {word: key for key, words in _KEYS.items() for word in words}
_FIELD = re.compile("(" + "|".join(sorted(map(re.escape, _WORD_TO_KEY), key=len, reverse=True)) + r")\s*[=:]\s*")
_YES, _NO = ("是", "有", "存在"), ("否", "无", "没有", "不存在")
_SUSPECTED = ("疑似", "可能", "待定")
_NONE = ("无", "没有", "空", "清空")
_TRIM = re.compile(r"^[\s,;]+|[\s,;]+$")
FIELD_NAMES = "村、乡镇、类别、标题、败诉风险、期限"


def _fields(args: str) -> dict[str, str]:
    """`村=上洋村 类别=劳资纠纷` → {"village": "上洋村", "category": "劳资纠纷"}; a value runs to the next key."""
    marks = list(_FIELD.finditer(args))
    if not marks or args[: marks[0].start()].strip():
        raise Refusal(f"请写明要改的项和新值,如「{USAGE}」(可改:{FIELD_NAMES})。")
    out: dict[str, str] = {}
    for m, nxt in zip(marks, [*marks[1:], None], strict=True):
        value = _TRIM.sub("", args[m.end() : nxt.start() if nxt else len(args)])
        if not value:
            raise Refusal(f"「{m.group(1)}」后请写新值,如「{USAGE}」。")
        out[_WORD_TO_KEY[m.group(1)]] = value
    return out


def _unit(ctx: Context, value: str, kind: str, word: str) -> UnitInfo | None:
    if value in _NONE:
        return None
    try:
        unit = ctx.directory.resolve(value)
    except AmbiguousUnit as e:
        choices = "、".join(f"{ctx.directory.get(u.parent_id).name}/{u.name}" for u in e.candidates if u.parent_id)
        raise Refusal(f"「{value}」有重名,请写明是哪一个:{choices}。") from e
    if unit is None or unit.kind != kind:
        raise Refusal(f"没有名为「{value}」的{word},请核对名称。")
    return unit


def _category(value: str) -> str:
    if value in CATEGORIES:
        return value
    matches = [c for c in CATEGORIES if value in c]
    if len(matches) == 1:
        return matches[0]
    raise Refusal(f"类别请从以下选择:{'、'.join(CATEGORIES)}。")


def _litigation(value: str) -> dict[str, bool]:
    """是 / 否 / 疑似 → the two stored flags (never both set)."""
    if value in _YES:
        kind = Litigation.YES
    elif value in _NO:
        kind = Litigation.NO
    elif value in _SUSPECTED:
        kind = Litigation.SUSPECTED
    else:
        raise Refusal("败诉风险请写「是」「否」或「疑似」,如「改 #12 败诉风险=疑似」。")
    risk, suspected = kind.flags
    return {"litigation_risk": risk, "litigation_suspected": suspected}


def _deadline(ctx: Context, value: str) -> str | None:
    if value in _NONE:
        return None
    # The value is a deadline expression without its 前 (3月31日, 本周五, 月底, 3个工作日内).
    found: date | None = deadline_in(value + "前", ctx.today, ctx.calendar)
    if found is None:
        raise Refusal(f"期限「{value}」无法识别,请写成「3月31日」「本周五」「月底」或「3个工作日内」。")
    return found.isoformat()


def _place(ctx: Context, issue: Issue, given: dict[str, str]) -> dict[str, int | None]:
    """The township and village the correction asks for, checked against who handles the issue."""
    township_id, village_id = issue.township_id, issue.village_id
    if "township" in given:
        township = _unit(ctx, given["township"], "township", "乡镇(街道)")
        township_id = township.id if township else None
        if village_id is not None and ctx.directory.get(village_id).parent_id != township_id:
            village_id = None  # the old village is not in the new township
    if "village" in given:
        village = _unit(ctx, given["village"], "village", "村(社区)")
        village_id = village.id if village else None
        if village is not None:
            township_id = village.parent_id
    allowed = {
        "village": village_id == issue.unit_id,
        "township": township_id == issue.unit_id,
        "district": True,
    }[issue.level]
    if not allowed:
        handler = ctx.directory.get(issue.unit_id).name
        raise Refusal(f"#{issue.id} 由{handler}办理,只能改为其范围内的地点;如需转交请「上报」或「退回」。")
    return {"township_id": township_id, "village_id": village_id}


def amend(ctx: Context) -> Result:
    issue = ctx.target
    if issue.status == Status.CLOSED:
        raise Refusal(f"#{issue.id} 已作为重复件合并到 #{issue.duplicate_of},请改 #{issue.duplicate_of}。")
    given = _fields(ctx.cmd.args)
    wanted: dict[str, Any] = {}
    if "township" in given or "village" in given:
        wanted.update(_place(ctx, issue, given))
    if "category" in given:
        wanted["category"] = _category(given["category"])
    if "title" in given:
        wanted["title"] = mask(given["title"])[:TITLE_LENGTH]
    if "litigation_risk" in given:
        wanted.update(_litigation(given["litigation_risk"]))
    if "requested_deadline" in given:
        wanted["requested_deadline"] = _deadline(ctx, given["requested_deadline"])
    current = {key: getattr(issue, key) for key in wanted}
    if current.get("requested_deadline"):
        current["requested_deadline"] = current["requested_deadline"].isoformat()
    changed = {key: value for key, value in wanted.items() if current[key] != value}
    if not changed:
        raise Refusal(f"#{issue.id} 的登记内容已是如此,无需更正。")
    data = {"fields": changed, "text": ctx.cmd.args}
    record(ctx.session, issue, Kind.AMENDED, actor_id=ctx.actor.id, at=ctx.at, msg_id=ctx.msg.msg_id, data=data)
    return Result(Reply(r.amended(issue, place(ctx, issue))), issue_id=issue.id)
