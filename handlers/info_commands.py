"""Read-only verbs: 查, 列表, 统计, 帮助."""

from __future__ import annotations

from handlers import replies as r
from handlers.context import Context, Refusal
from handlers.grammar import take_word
from handlers.issue_commands import place
from handlers.replies import Reply, Result
from models import queries as q
from models.counts import PeriodError, count_levels, parse_period
from models.tables import Person, Unit

LIST_MODES = ("待办", "我的", "逾期", "本单位", "全部")


def show(ctx: Context) -> Result:
    issue = ctx.target
    events = q.events_of(ctx.session, issue.id)  # type: ignore[arg-type]
    actors = q.people(ctx.session, [e.actor_id for e in events])
    names = {p.id: p.name for p in actors}
    owner = ctx.session.get(Person, issue.owner_id) if issue.owner_id else None
    dept = ctx.session.get(Unit, issue.department_id) if issue.department_id else None
    return Result(
        Reply(r.card(issue, place(ctx, issue), owner, dept.name if dept else None, events, names)), issue_id=issue.id
    )


def list_(ctx: Context) -> Result:
    words = ctx.cmd.args.split()
    mode = next((w for w in words if w in LIST_MODES), "待办")
    pages = [int(w) for w in words if w.isdigit()]
    unknown = [w for w in words if w not in LIST_MODES and not w.isdigit()]
    if unknown:
        raise Refusal(f"列表可选:{'/'.join(LIST_MODES)},如「列表 逾期」。")
    page = pages[0] if pages else 1
    if not 1 <= page <= 1000:
        raise Refusal("页码应在1到1000之间。")
    rows, fetched = q.list_issues(ctx.session, ctx.unit, ctx.actor.id, mode, ctx.today, page)
    if not rows:
        return Result(Reply(f"【{mode}】第{page}页没有问题。" if page > 1 else f"【{mode}】暂无问题。"))
    lines = [f"【{mode}】第{page}页"] + [r.issue_line(i, place(ctx, i), ctx.today) for i in rows]
    if fetched > len(rows):
        lines.append(f"更多请回复「列表 {mode} {page + 1}」")
    return Result(Reply("\n".join(lines)))


RAW_WORD = "原文"  # 统计 … 原文: the report's exact paragraph instead of the phone lines


def stats(ctx: Context) -> Result:
    raw, args = take_word(ctx.cmd.args, RAW_WORD)
    try:
        period = parse_period(args, ctx.today)
    except PeriodError as e:
        raise Refusal(f"无法识别统计时段「{e}」,可用:本周/本月/本年/2020/2020-01-01~2020-06-30。") from e
    counts = count_levels(ctx.session, period, ctx.unit, ctx.at)
    head = f"【统计】{period.label} · {ctx.unit.name}"
    if raw:
        return Result(Reply(f"{head}\n{counts.paragraph()}"))
    hint = f"报告原文请回复「统计 {args + ' ' if args else ''}{RAW_WORD}」"
    return Result(Reply("\n".join([head, *counts.lines(), hint])))


def help_(ctx: Context) -> Result:
    from handlers.verbs import HELP  # the table lists this handler: import it at call time

    return Result(Reply(HELP))
