"""The lifecycle verbs: 上报 (new and escalate), 研判, 交办, 反馈, 办结, 退回, 重办, 延期,
同意延期, 不同意延期, 合并, 不满意, 督办. Who may use each is declared on its row in handlers/verbs.py and
checked before it runs; a handler checks the issue's state and its arguments, then records
events. None touches a transport."""

from __future__ import annotations

import re
from datetime import timedelta

from handlers import replies as r
from handlers.context import Context, Refusal
from handlers.deadlines import DeadlineError, add_days, parse_days, parse_deadline
from handlers.duplicates import near_duplicates
from handlers.intake import parse_submission
from handlers.intake.risk import stated_litigation
from handlers.pictures import attach_inline
from handlers.replies import Notice, Reply, Result
from models import queries as q
from models import todos
from models.cards import Step
from models.clock import local
from models.events import Created, Kind, Payload, Reviewed
from models.lifecycle import new_issue, record
from models.masking import mask
from models.rules import LEAD_TITLES, may_own
from models.tables import Issue, Person
from models.vocabulary import DOWN, LEVEL_NAMES, UP, Level, Role, Status

MIN_TEXT = 4
REVISIT_DAYS = 7
_RISK_LEVEL = re.compile(r"风险\s*[:：]?\s*(高|中|低)")


def _event(ctx: Context, issue: Issue, kind: Kind, data: Payload, tuesday: bool = False) -> None:
    record(
        ctx.session,
        issue,
        kind,
        actor_id=ctx.actor.id,
        at=ctx.at,
        msg_id=ctx.msg.msg_id,
        data=dict(data),
        tuesday=tuesday,
    )


def place(ctx: Context, issue: Issue) -> str:
    return ctx.directory.place(issue.township_id, issue.village_id)


def _ids(people: list[Person]) -> tuple[str, ...]:
    return tuple(p.id for p in people)


def _need(text: str, what: str, usage: str) -> str:
    if len(text.strip()) < 2:
        raise Refusal(f"请写明{what},如「{usage}」。")
    return text.strip()


def submit_text(ctx: Context) -> Result:
    """上报 followed by the problem itself."""
    return submit(ctx, ctx.cmd.rest)


def submit(ctx: Context, text: str) -> Result:
    if len(text.strip()) < MIN_TEXT:
        raise Refusal("请在「上报」后写明问题内容,如「上报 上洋村宅基地审批8个月未批复」。")
    intake = parse_submission(text, ctx.unit, ctx.directory, ctx.today, ctx.calendar)
    level = ctx.directory.level_of(ctx.unit)
    unit_id = ctx.unit.id if level != Level.DISTRICT else ctx.directory.district.id
    data: Created = {
        "title": intake.title,
        "text": text,
        "level": level,
        "unit_id": unit_id,
        "township_id": intake.township.id if intake.township else None,
        "village_id": intake.village.id if intake.village else None,
        "category": intake.category,
        "litigation_risk": intake.litigation_risk,
        "litigation_suspected": intake.litigation_suspected,
        "phones": intake.phones,
        "has_id_number": intake.has_id_number,
        "requested_deadline": intake.deadline.isoformat() if intake.deadline else None,
        "reporter_id": ctx.actor.id,
        "source_msg_id": ctx.msg.msg_id,
        "conversation_id": ctx.msg.conversation_id,
    }
    duplicates = near_duplicates(ctx.session, ctx.directory, dict(data), ctx.at)  # before this one is stored
    issue = new_issue(dict(data), ctx.at)
    _event(ctx, issue, Kind.CREATED, data)
    attach_inline(ctx, issue)
    text_out = r.receipt(issue, place(ctx, issue), r.facts_line(issue), duplicates, intake.ambiguous)
    at: tuple[str, ...] = ()
    if level != Level.VILLAGE:  # above the village someone must review or assign it
        leads = [p for p in q.leads_of(ctx.session, level, unit_id) if p.id != ctx.actor.id]
        if leads:
            verb = "研判" if level == Level.TOWNSHIP else "交办"
            text_out += f"\n{r.mention(leads)} 请{verb}。"
            at = _ids(leads)
    return Result(Reply(text_out, at), issue_id=issue.id)


def escalate(ctx: Context) -> Result:
    issue = ctx.target
    ctx.require_open(issue)
    to_level = UP.get(issue.level)
    if to_level is None:
        raise Refusal(f"#{issue.id} 已在区级,无法再上报。")
    if to_level == Level.TOWNSHIP:
        if issue.township_id is None:
            raise Refusal(f"#{issue.id} 没有所属乡镇,无法上报。")
        to_unit = ctx.directory.get(issue.township_id)
    else:
        to_unit = ctx.directory.district
    reason, from_level = ctx.cmd.args, issue.level
    _event(
        ctx,
        issue,
        Kind.ESCALATED,
        {"from_level": issue.level, "to_level": to_level, "unit_id": to_unit.id, "reason": reason},
    )
    if to_level == Level.DISTRICT:  # the duty leads take it, not every district lead
        leads = q.duty_leads(ctx.session, to_unit.id, ctx.duty_leads)
    else:
        leads = q.leads_of(ctx.session, to_level, to_unit.id)
    verb = "研判" if to_level == Level.TOWNSHIP else "交办"
    ask = f"{r.mention(leads)} 请{verb}。" if leads else f"请{to_unit.name}{verb}。"
    notice_text = f"新上报 #{issue.id}【{place(ctx, issue)}】{issue.title}"
    if issue.risk:
        notice_text += f" · 风险 {issue.risk}"
    if litigation := r.litigation_tag(issue):
        notice_text += f" · {litigation}"
    if issue.opinion:  # the lower level's 研判, so the upper one need not ask for it
        notice_text += f"\n{LEVEL_NAMES[from_level]}研判: {mask(issue.opinion)}"
    if reason:
        notice_text += f"\n上报理由: {mask(reason)}"
    step = Step.DISTRICT if to_level == Level.DISTRICT else None  # the duty leads' 研判 / 交办 card
    notice = Notice(f"{notice_text}\n{ask}", _ids(leads), unit_id=to_unit.id, step=step)
    return Result(Reply(f"#{issue.id} 已上报至{to_unit.name}。{ask}", _ids(leads)), [notice], issue.id)


def review(ctx: Context) -> Result:
    issue = ctx.target
    ctx.require_open(issue)
    if issue.status == Status.ASSIGNED:
        raise Refusal(f"#{issue.id} 已交办,无需再研判。")
    text = ctx.cmd.args
    risk_match = _RISK_LEVEL.search(text)
    stated = stated_litigation(text)  # "无行政败诉风险" is the reviewer's judgment too
    opinion = _RISK_LEVEL.sub(" ", text)
    opinion = (opinion.replace("行政败诉风险", " ") if stated else opinion).strip()
    opinion = _need(opinion, "研判意见", f"研判 #{issue.id} 属历史遗留,需区里协调 风险:高")
    before = r.litigation_tag(issue)
    level = risk_match.group(1) if risk_match else None
    data: Reviewed = {"opinion": opinion, "risk": level, "litigation_risk": bool(stated)}
    if stated is False:
        data["litigation_cleared"] = True
    _event(ctx, issue, Kind.REVIEWED, data)
    extra = f" · 风险 {issue.risk}" if issue.risk else ""
    if tag := r.litigation_tag(issue):
        extra += f" · {tag}"
    elif before:  # only a 研判 saying there is none takes a flag away
        extra += " · 已排除行政败诉风险"
    nxt = (
        f"如需上级处理请「上报 #{issue.id}」。" if issue.level != Level.DISTRICT else f"请区领导「交办 #{issue.id}」。"
    )
    return Result(Reply(f"#{issue.id} 已研判{extra}。{nxt}"), issue_id=issue.id)


def _owner(ctx: Context, issue: Issue) -> Person:
    person = _mentioned_owner(ctx) or _named_owner(ctx, issue)
    if not may_own(ctx.directory, issue.level, issue.unit_id, person):
        unit = ctx.directory.get(issue.unit_id).name
        raise Refusal(f"包案人应为{unit}或其下属单位的人员;需要上级部门办理请「上报 #{issue.id}」。")
    return person


def _mentioned_owner(ctx: Context) -> Person | None:
    mentioned = ctx.msg.mentioned()
    if mentioned:
        a = mentioned[0]
        person = q.find_sender(ctx.session, a.staff_id, a.union_id, a.dingtalk_id)
        if person is None:
            raise Refusal("被@的人还未登记,请管理员先用「角色」添加。")
        return person
    # A richText message keeps the @name as text.
    for name in re.findall(r"@(\S+)", ctx.msg.text):
        found = q.people_named(ctx.session, name)
        if len(found) == 1:
            return found[0]
    return None


MAX_CANDIDATES = 3  # named in the question; more would not fit a line


def _named_owner(ctx: Context, issue: Issue) -> Person:
    """A name typed without @ (交办 #3 叶俊杰 限3天): the one person of that name who may own the
    case; with several, ask which (by unit: a name alone says nothing, and no staffId is shown)."""
    for word in ctx.cmd.args.split():
        found = q.people_named(ctx.session, word)
        if not found:
            continue
        eligible = [p for p in found if may_own(ctx.directory, issue.level, issue.unit_id, p)]
        if len(eligible) == 1 or not eligible:
            return (eligible or found)[0]  # none eligible: _owner says whom the level may name
        units = "、".join(ctx.directory.get(p.unit_id).name for p in eligible[:MAX_CANDIDATES])
        more = "等" if len(eligible) > MAX_CANDIDATES else ""
        raise Refusal(f"「{word}」有{len(eligible)}位({units}{more}),是哪一位?请@包案人。")
    raise Refusal("请@包案人,如「交办 #12 @钱七 区自然资源局 限10个工作日」。")


def assign(ctx: Context) -> Result:
    issue = ctx.target
    ctx.require_open(issue)
    owner = _owner(ctx, issue)
    text = ctx.cmd.args
    tuesday_tag = "周二无会日" in text
    try:
        deadline, text = parse_deadline(text.replace("周二无会日", " "), ctx.today, ctx.calendar)
    except DeadlineError as e:
        raise Refusal(f"截止日期「{e}」无效,请写成「限10个工作日」或「截止12月31日」。") from e
    department = next(
        (
            d
            for d in sorted(ctx.directory.departments(), key=lambda d: -len(d.name))
            if any(label in text for label in (d.name, *d.aliases))
        ),
        None,
    )
    if department is None and owner.role == Role.DEPARTMENT:
        department = ctx.directory.get(owner.unit_id)
    tuesday = issue.level == Level.DISTRICT and (tuesday_tag or local(ctx.at).weekday() == 1)
    _event(
        ctx,
        issue,
        Kind.ASSIGNED,
        {
            "owner_id": owner.id,
            "department_id": department.id if department else None,
            "deadline": deadline.isoformat() if deadline else None,
            "tuesday": tuesday_tag,
        },
        tuesday=tuesday,
    )
    todos.created(ctx.session, issue, owner, ctx.at, ctx.msg.msg_id)
    parts = [f"#{issue.id} 已交办 @{owner.name}"]
    if department:
        parts.append(department.name)
    parts.append(r.deadline_text(deadline))
    if tuesday:  # tagged, or made on a Tuesday: counted as one either way (PRODUCT §2)
        parts.append("周二无会日办理件")
    return Result(Reply(" · ".join(parts) + "。", (owner.id,), step=Step.ASSIGNED), issue_id=issue.id)


def feedback(ctx: Context) -> Result:
    issue = ctx.target
    ctx.require_open(issue)
    text = _need(ctx.cmd.args, "进展", f"反馈 #{issue.id} 已约谈当事人")
    _event(ctx, issue, Kind.FEEDBACK, {"text": text})
    attach_inline(ctx, issue)
    return Result(
        Reply(f"#{issue.id} 已记录进展。现场照片请与文字一起发送(同一条消息内@我),或10分钟内在与我的单聊中发送。"),
        issue_id=issue.id,
    )


def resolve(ctx: Context) -> Result:
    issue = ctx.target
    ctx.require_open(issue)
    result = _need(ctx.cmd.args, "办理结果", f"化解 #{issue.id} 已补办手续")
    used = ctx.calendar.workdays_between(local(issue.created_at).date(), ctx.today)
    _event(ctx, issue, Kind.RESOLVED, {"result": result})
    todos.updated(ctx.session, issue, ctx.at, ctx.msg.msg_id, done=True)
    reporters = [p for p in q.people(ctx.session, q.followers(ctx.session, issue)) if p.id != ctx.actor.id]
    text = f"#{issue.id}【已{r.resolved_word(issue.level)}】用时 {used} 个工作日。"
    if reporters:
        text += f"{r.mention(reporters)} 请回访当事人,如不满意回复「不满意 #{issue.id} 原因」。"
    notices = _to_origin(ctx, issue, text, _ids(reporters))
    step = Step.REVISIT if reporters else None
    return Result(Reply(text, _ids(reporters), step=step), notices, issue.id)


def _to_origin(ctx: Context, issue: Issue, text: str, at: tuple[str, ...]) -> list[Notice]:
    """Tell the group the issue was reported in, when that is not this one."""
    origin = q.events_of(ctx.session, issue.id)[0].data.get("conversation_id") if issue.id else None
    if origin and origin != ctx.msg.conversation_id:
        return [Notice(text, at, conversation_id=origin, key="origin")]
    return []


def return_down(ctx: Context) -> Result:
    issue = ctx.target
    ctx.require_open(issue)
    to_level = DOWN.get(issue.level)
    below: dict[str, int | None] = {Level.TOWNSHIP: issue.township_id, Level.VILLAGE: issue.village_id}
    target = below.get(to_level or "")
    if to_level is None or target is None:
        raise Refusal(f"#{issue.id} 已在最基层,无法退回。")
    reason = _need(ctx.cmd.args, "退回原因", f"退回 #{issue.id} 请先核实当事人诉求")
    _event(
        ctx,
        issue,
        Kind.RETURNED,
        {"from_level": issue.level, "to_level": to_level, "unit_id": target, "reason": reason},
    )
    unit = ctx.directory.get(target)
    leads = q.leads_of(ctx.session, to_level, target)
    text = f"#{issue.id} 已退回{unit.name}:{mask(reason)}"
    ask = f"{r.mention(leads)} 请处理。" if leads else ""
    return Result(
        Reply(f"{text}\n{ask}".strip(), _ids(leads)),
        [Notice(f"{text}\n{ask}".strip(), _ids(leads), unit_id=target)],
        issue.id,
    )


def reopen(ctx: Context) -> Result:
    issue = ctx.target
    if issue.status != Status.RESOLVED:
        raise Refusal(f"#{issue.id} 尚未办结,无需重办。")
    reason = _need(ctx.cmd.args, "重办原因", f"重办 #{issue.id} 当事人仍有异议")
    _event(ctx, issue, Kind.REOPENED, {"reason": reason, "by": "lead"})
    return _reopened_reply(ctx, issue, "重办")


def _reopened_reply(ctx: Context, issue: Issue, word: str) -> Result:
    todos.updated(ctx.session, issue, ctx.at, ctx.msg.msg_id, done=False)
    who = (
        q.people(ctx.session, [issue.owner_id])
        if issue.owner_id
        else q.leads_of(ctx.session, issue.level, issue.unit_id)
    )
    who = [p for p in who if p.id != ctx.actor.id]
    text = f"#{issue.id} 已{word},重新办理。" + (f"{r.mention(who)} 请跟进。" if who else "")
    return Result(Reply(text, _ids(who)), issue_id=issue.id)


def dissatisfied(ctx: Context) -> Result:
    issue = ctx.target
    if issue.status != Status.RESOLVED or issue.resolved_at is None:
        raise Refusal(f"#{issue.id} 尚未办结。")
    if ctx.at - issue.resolved_at > timedelta(days=REVISIT_DAYS):
        raise Refusal(f"#{issue.id} 办结已超过{REVISIT_DAYS}天,请联系{LEAD_TITLES[issue.level]}「重办」。")
    reason = _need(ctx.cmd.args, "不满意的原因", f"不满意 #{issue.id} 补偿款仍未到位")
    _event(ctx, issue, Kind.REOPENED, {"reason": reason, "by": "reporter"})
    return _reopened_reply(ctx, issue, "因回访不满意重办")


def extend(ctx: Context) -> Result:
    issue = ctx.target
    ctx.require_open(issue)
    if issue.deadline is None:
        raise Refusal(f"#{issue.id} 没有截止日期,无需延期。")
    parsed = parse_days(ctx.cmd.args)
    if parsed is None:
        raise Refusal(f"请写明延期天数,如「延期 #{issue.id} 5个工作日 原因」。")
    days, workdays, reason = parsed
    reason = _need(reason, "延期原因", f"延期 #{issue.id} 5个工作日 等待鉴定结果")
    _event(ctx, issue, Kind.EXTENSION_REQUESTED, {"days": days, "workdays": workdays, "reason": reason})
    leads = [p for p in q.assigning_lead(ctx.session, issue) if p.id != ctx.actor.id]  # who set the deadline
    unit = "个工作日" if workdays else "天"
    text = f"#{issue.id} 申请延期{days}{unit}:{mask(reason)}\n{r.mention(leads)} 同意请回复「同意延期 #{issue.id}」。"
    return Result(Reply(text, _ids(leads), step=Step.EXTENSION if leads else None), issue_id=issue.id)


def satisfied(ctx: Context) -> Result:
    """满意 (the 回访 card's button, or typed): the reporter confirms the result; nothing changes."""
    issue = ctx.target
    if issue.status != Status.RESOLVED:
        raise Refusal(f"#{issue.id} 尚未办结。")
    return Result(Reply(f"#{issue.id} 回访满意,感谢反馈。"), issue_id=issue.id)


def approve_extension(ctx: Context) -> Result:
    issue = ctx.target
    ctx.require_open(issue)
    if issue.extension_days is None or issue.deadline is None:
        raise Refusal(f"#{issue.id} 没有待审批的延期申请。")
    assert issue.id is not None
    request = next(e for e in reversed(q.events_of(ctx.session, issue.id)) if e.kind == Kind.EXTENSION_REQUESTED)
    deadline = add_days(issue.deadline, issue.extension_days, bool(request.data.get("workdays")), ctx.calendar)
    _event(ctx, issue, Kind.EXTENSION_APPROVED, {"deadline": deadline.isoformat(), "days": issue.extension_days})
    todos.updated(ctx.session, issue, ctx.at, ctx.msg.msg_id, dueTime=todos.due_ms(deadline))
    owner = q.people(ctx.session, [issue.owner_id]) if issue.owner_id else []
    return Result(
        Reply(f"#{issue.id} 已同意延期,新{r.deadline_text(deadline)}。{r.mention(owner)}".strip(), _ids(owner)),
        issue_id=issue.id,
    )


def reject_extension(ctx: Context) -> Result:
    """不同意延期: the request is answered no, with the reason, to the one who asked; the
    deadline stays as it was (so every count stays as it was too)."""
    issue = ctx.target
    ctx.require_open(issue)
    if issue.extension_days is None or issue.deadline is None:
        raise Refusal(f"#{issue.id} 没有待审批的延期申请。")
    reason = _need(ctx.cmd.args, "不同意的理由", f"不同意延期 #{issue.id} 鉴定结果已出,请按期办结")
    assert issue.id is not None
    request = next(e for e in reversed(q.events_of(ctx.session, issue.id)) if e.kind == Kind.EXTENSION_REQUESTED)
    _event(ctx, issue, Kind.EXTENSION_REJECTED, {"days": issue.extension_days, "reason": reason})
    asked = [p for p in q.people(ctx.session, [request.actor_id]) if p.id != ctx.actor.id] if request.actor_id else []
    why = mask(reason).rstrip("。.")
    text = f"#{issue.id} 延期申请未获同意:{why}。仍按原{r.deadline_text(issue.deadline)}。{r.mention(asked)}"
    return Result(Reply(text.strip(), _ids(asked)), issue_id=issue.id)


def merge(ctx: Context) -> Result:
    main, dup = ctx.targets
    if main.id == dup.id:
        raise Refusal("不能把问题合并到它自己。")
    if main.status == Status.CLOSED:
        raise Refusal(f"#{main.id} 本身已合并到 #{main.duplicate_of},请合并到 #{main.duplicate_of}。")
    if main.status == Status.RESOLVED:  # its reporters would never hear the result they are promised
        raise Refusal(f"#{main.id} 已办结,不能再并入;如需继续办理请先「重办 #{main.id} 原因」。")
    ctx.require_open(dup)
    assert main.id is not None and dup.id is not None
    _event(ctx, dup, Kind.CLOSED, {"duplicate_of": main.id})
    _event(ctx, main, Kind.MERGED, {"duplicate": dup.id})
    reporter = [p for p in q.people(ctx.session, [dup.reporter_id]) if p.id != ctx.actor.id]
    text = f"#{dup.id} 已并入 #{main.id},办理结果将一并告知。{r.mention(reporter)}".strip()
    return Result(Reply(text, _ids(reporter)), issue_id=main.id)


def supervise(ctx: Context) -> Result:
    issue = ctx.target
    ctx.require_open(issue)
    if issue.owner_id is None:
        raise Refusal(f"#{issue.id} 尚未交办,无人可督办。")
    _event(ctx, issue, Kind.SUPERVISED, {})
    owner = q.people(ctx.session, [issue.owner_id])
    due = f"{r.deadline_text(issue.deadline)}" if issue.deadline else "请尽快办理"
    text = f"【督办】{r.mention(owner)} #{issue.id} {issue.title} · {due},请尽快反馈进展。"
    return Result(Reply(text, _ids(owner), step=Step.SUPERVISED), issue_id=issue.id)


def acknowledged(ctx: Context) -> Result:
    """已知悉 (the 督办 card's button, or typed): the 包案人 says they saw it; nothing changes."""
    issue = ctx.target
    ctx.require_open(issue)
    return Result(Reply(f"#{issue.id} 已知悉,请尽快办理并反馈进展。"), issue_id=issue.id)
