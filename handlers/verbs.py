"""Every chat verb, one row each: its words, the handler, who may use it, its usage line and its
line in 帮助. The grammar's words, 帮助, "did you mean", the usage hints and the permission
checks all come from this table; adding a verb is adding a row (and its handler)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from handlers import admin_commands as admin
from handlers import corrections, pictures
from handlers import info_commands as info
from handlers import issue_commands as issues
from handlers import permissions as p
from handlers.context import Context, Refusal
from handlers.grammar import Command, Grammar
from handlers.replies import Result
from models.rules import LEAD_TITLES
from models.tables import Issue

Handler = Callable[[Context], Result]
MIN_SUBMISSION = 10  # a message with no verb at least this long is a new submission


def _names_an_issue(cmd: Command) -> bool:
    return cmd.rest.startswith("#") and bool(cmd.refs)


@dataclass(frozen=True)
class Verb:
    name: str  # the canonical word
    run: Handler
    usage: str  # an example, as hints quote it
    aliases: tuple[str, ...] = ()
    usage_note: str = ""  # said after the example when the numbers are missing
    refs: int = 0  # the issues (#N) it acts on: looked up, scoped and checked before `run`
    may: p.Rule | None = None  # checked on each of those issues (on None for a verb of none)
    denied: str = ""  # the refusal when `may` says no: {id}, {lead} (who leads that level), {unit}
    help: str | None = None  # its line in 帮助; None: only named in the last line
    joins: bool = False  # its help goes on the previous help line
    hidden: bool = False  # not in 帮助 at all
    needs_break: bool = False  # its words count only when a break or `#` follows them
    form: Callable[[Command], bool] | None = None  # which row of a word with two forms
    writes: bool = True  # False: it only reads, so its reply is computed outside the write transaction

    def matches(self, cmd: Command) -> bool:
        return self.form is None or self.form(cmd)


VERBS: tuple[Verb, ...] = (
    Verb("上报", issues.submit_text, "上报 问题描述", help="上报 问题描述 → 登记新问题"),
    Verb(
        "上报",
        issues.escalate,
        "上报 #12 原因",
        ("提交", "反映"),
        refs=1,
        may=p.staff,
        denied="只有#{id}当前所在单位的人员可以上报。",
        help="上报 #12 原因 → 提交上一级",
        form=_names_an_issue,
    ),
    Verb(
        "研判",
        issues.review,
        "研判 #12 意见 风险:高",
        refs=1,
        may=p.staff,
        denied="研判需由#{id}当前所在的{unit}人员操作。",
        help="研判 #12 意见 [风险:高]",
    ),
    Verb(
        "交办",
        issues.assign,
        "交办 #12 @包案人 限10个工作日",
        refs=1,
        may=p.lead,
        denied="交办需由{lead}操作;你可以「查 #{id}」了解进展。",
        help="交办 #12 @包案人 [部门] [限10个工作日] [周二无会日]",
    ),
    Verb(
        "反馈",
        issues.feedback,
        "反馈 #12 进展",
        refs=1,
        may=p.any_of(p.owner, p.staff),
        denied="反馈需由#{id}的包案人或当前所在单位人员操作。",
        help="反馈 #12 进展",
    ),
    Verb(
        "办结",
        issues.resolve,
        "办结 #12 结果",
        ("化解",),
        refs=1,
        may=p.any_of(p.owner, p.lead),
        denied="办结需由#{id}的包案人或{lead}操作。",
        help="办结 #12 结果",
        joins=True,
    ),
    Verb(
        "改",
        corrections.amend,
        corrections.USAGE,
        ("更正", "修改"),
        refs=1,
        may=p.any_of(p.reporter, p.lead),
        denied="只有#{id}的上报人或当前层级领导可以更正。",
        help=f"{corrections.USAGE} → 更正登记内容",
        needs_break=True,
    ),
    Verb(
        "退回",
        issues.return_down,
        "退回 #12 原因",
        refs=1,
        may=p.lead,
        denied="退回需由{lead}操作;你可以「查 #{id}」了解进展。",
    ),
    Verb(
        "重办",
        issues.reopen,
        "重办 #12 原因",
        refs=1,
        may=p.lead,
        denied="重办需由{lead}操作;你可以「查 #{id}」了解进展。",
    ),
    Verb(
        "延期",
        issues.extend,
        "延期 #12 5个工作日 原因",
        refs=1,
        may=p.owner,
        denied="延期需由#{id}的包案人申请。",
    ),
    Verb(
        "同意延期",
        issues.approve_extension,
        "同意延期 #12",
        refs=1,
        may=p.lead,
        denied="同意延期需由{lead}操作;你可以「查 #{id}」了解进展。",
    ),
    Verb(
        "不同意延期",
        issues.reject_extension,
        "不同意延期 #12 理由",
        refs=1,
        may=p.lead,  # whoever may approve it may refuse it
        denied="不同意延期需由{lead}操作;你可以「查 #{id}」了解进展。",
    ),
    Verb(
        "合并",
        issues.merge,
        "合并 #12 #15",
        usage_note="(#15 并入 #12)",
        refs=2,
        may=p.lead,
        denied="合并需由{lead}操作(两件都须由你负责)。",
    ),
    Verb(
        "不满意",
        issues.dissatisfied,
        "不满意 #12 原因",
        refs=1,
        may=p.revisited,
        denied="只有#{id}的原上报人可以回复不满意。",
    ),
    Verb(
        "满意",
        issues.satisfied,
        "满意 #12",
        refs=1,
        may=p.revisited,
        denied="只有#{id}的原上报人可以回复满意。",
        writes=False,  # it confirms the result and changes nothing
    ),
    Verb(
        "督办",
        issues.supervise,
        "督办 #12",
        refs=1,
        may=p.any_of(p.lead, p.lead_above),
        denied="督办需由领导操作。",
    ),
    Verb(
        "已知悉",
        issues.acknowledged,
        "已知悉 #12",
        refs=1,
        may=p.owner,
        denied="已知悉由#{id}的包案人回复。",
        writes=False,  # it acknowledges a 督办 and changes nothing
    ),
    Verb("查", info.show, "查 #12", ("详情", "查看", "查询"), refs=1, help="查 #12", writes=False),
    Verb("列表", info.list_, "列表 逾期", help="列表 [待办/我的/逾期]", joins=True, writes=False),
    Verb("统计", info.stats, "统计 本月", help=f"统计 [本月/2020] [{info.RAW_WORD}]", joins=True, writes=False),
    Verb("帮助", info.help_, "帮助", ("help", "?"), hidden=True, writes=False),
    Verb(
        "绑定",
        admin.bind,
        "绑定 花园街道",
        may=p.admin,
        denied="只有管理员可以绑定群或设置角色。",
        hidden=True,
    ),
    Verb(
        "角色",
        admin.set_role,
        "角色 @张三 村干部 上洋村",
        may=p.admin,
        denied="只有管理员可以绑定群或设置角色。",
        hidden=True,
    ),
)

FORMS: dict[str, tuple[Verb, ...]] = {}
for _verb in VERBS:
    FORMS[_verb.name] = (*FORMS.get(_verb.name, ()), _verb)
# canonical word → every word for it, the canonical one first
ALIASES: dict[str, tuple[str, ...]] = {
    name: tuple(dict.fromkeys(w for v in forms for w in (v.name, *v.aliases))) for name, forms in FORMS.items()
}
GRAMMAR = Grammar(ALIASES, frozenset(w for v in VERBS if v.needs_break for w in ALIASES[v.name]))
parse = GRAMMAR.parse
suggest = GRAMMAR.suggest


def _help() -> str:
    lines = ["两难助手用法(先 @我):"]
    for verb in VERBS:
        if verb.help is None:
            continue
        if verb.joins:
            lines[-1] += f" · {verb.help}"
        else:
            lines.append(f"- {verb.help}")
    named = dict.fromkeys(v.name for v in VERBS if v.help is None and not v.hidden)
    lines.append("- " + "、".join(named))
    return "\n".join(lines)


HELP = _help()


def form_of(cmd: Command) -> Verb:
    """The row for a parsed command (a word with two forms, like 上报 and 上报 #12, has two)."""
    assert cmd.verb is not None
    forms = sorted(FORMS[cmd.verb], key=lambda v: v.form is None)  # the particular form first
    return next(v for v in forms if v.matches(cmd))


def run(verb: Verb, ctx: Context) -> Result:
    """Look up the issues the command names (in the sender's scope), check the verb's rule on
    each, and only then run the handler: no status hint reaches someone who may not act."""
    if len(ctx.cmd.refs) < verb.refs:
        what = "问题编号" if verb.refs == 1 else "两个编号"
        raise Refusal(f"请写明{what},如「{verb.usage}」{verb.usage_note}。")
    ctx.targets = tuple(ctx.issue(n) for n in ctx.cmd.refs[: verb.refs])
    if verb.may is not None:
        for issue in ctx.targets or (None,):
            if not verb.may(ctx, issue):
                raise Refusal(_denied(verb, ctx, issue))
    return verb.run(ctx)


def _denied(verb: Verb, ctx: Context, issue: Issue | None) -> str:
    if issue is None:
        return verb.denied
    unit = ctx.directory.get(issue.unit_id).name
    return verb.denied.format(id=issue.id, lead=LEAD_TITLES[issue.level], unit=unit)


def handle(ctx: Context) -> Result:
    """What a message asks for: photos for a recent post, a verb, or (long enough, with no verb)
    a new submission; anything else gets the help or a guess at the verb meant."""
    msg, cmd = ctx.msg, ctx.cmd
    if msg.msgtype == "picture" or (msg.pictures and not cmd.text):  # photos alone: evidence for a recent post
        return pictures.attach(ctx)
    if cmd.verb is not None:
        return run(form_of(cmd), ctx)
    if not cmd.text:
        raise Refusal(HELP)
    if cmd.refs or len(cmd.text) < MIN_SUBMISSION:
        guess = suggest(cmd.text)
        if guess:
            raise Refusal(f"没有听懂。你是不是想用「{guess}」?回复「帮助」看用法。")
        raise Refusal(HELP)
    return issues.submit(ctx, cmd.text)
