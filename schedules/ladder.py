"""The overdue ladder, every working day: due soon → a note to the owner; overdue → 催办 @owner
in the issue's group; overdue 2 working days → a work notification to the lead who assigned it
(not in the issue's group, and the moment matters beyond chat; one to one with the bot when the
app has no AgentId); 5 → 通报 in the district group, and with LIANDONG_DING_OVERDUE a DING to
the owner (a paid DingTalk feature, so off by default).
Each step is taken once per issue and deadline (ladder_steps), and a new deadline starts over."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date

from sqlalchemy import func
from sqlmodel import Session, col, select

from models import queries as q
from models.calendar import WorkdayCalendar
from models.lifecycle import record
from models.outbox import group_key, job_key
from models.tables import Issue, LadderStep
from schedules import due, render
from schedules.context import JobContext

BOT = "两难助手"  # the actor of the events the ladder records; the card shows it as the name
LEADS_AFTER = 2  # working days overdue before the level's leads are told
DISTRICT_AFTER = 5  # ... before it is announced (通报) in the district group
LATE_STEPS = ("overdue", "leads", "district")  # every step a case past its deadline can reach


def ladder_steps(deadline: date, today: date, calendar: WorkdayCalendar) -> list[str]:
    """The steps an issue has reached today; cumulative, since each step tells other people."""
    if today < deadline <= calendar.next_workday(today):
        return ["due_soon"]
    if deadline >= today:
        return []
    late = calendar.workdays_between(deadline, today)
    return ["overdue"] + ["leads"] * (late >= LEADS_AFTER) + ["district"] * (late >= DISTRICT_AFTER)


def settle(s: Session, issue_id: int, deadline: date) -> None:
    """Every late step taken for this deadline: the daily read skips the case from now on
    (Issue.ladder_settled), until a new deadline starts the ladder again."""
    q_ = select(func.count()).where(
        LadderStep.issue_id == issue_id, LadderStep.deadline == deadline, col(LadderStep.step).in_(LATE_STEPS)
    )
    if s.exec(q_).one() == len(LATE_STEPS):
        issue = s.get(Issue, issue_id)
        if issue is not None and issue.deadline == deadline:
            issue.ladder_settled = deadline


def reached(session: Session, today: date, calendar: WorkdayCalendar, force: bool) -> dict[str, list[Issue]]:
    """The issues by the step they reached today and have not had yet for their deadline (a
    forced rerun sends again what was sent). Decided on (id, deadline) from the index; only the
    cases with a step to take are read whole, to be rendered."""
    until = calendar.next_workday(today)  # the furthest deadline with a step today
    near = due.near_deadlines(session, until, skip_settled=not force)
    taken = set() if force else due.steps_taken(session, [i for i, _ in near])
    steps: dict[date, list[str]] = {}  # by deadline: a few dozen dates, each a calendar walk

    def of(deadline: date) -> list[str]:
        if deadline not in steps:
            steps[deadline] = ladder_steps(deadline, today, calendar)
        return steps[deadline]

    left = [i for i, d in near if any((i, d, s) not in taken for s in of(d))]
    found: dict[str, list[Issue]] = defaultdict(list)
    for issue in due.assigned_by_id(session, left):
        assert issue.deadline is not None
        for step in of(issue.deadline):
            if (issue.id, issue.deadline, step) not in taken:
                found[step].append(issue)
    return found


def _ids(issues: Sequence[Issue]) -> str:
    return "-".join(str(i.id) for i in issues)


class _Ladder:
    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.today = ctx.day

    def key(self, step: str, *parts: str) -> str:
        return job_key("overdue_ladder", self.today, step, *parts)

    def reached(self) -> dict[str, list[Issue]]:
        return reached(self.ctx.session, self.today, self.ctx.calendar, self.ctx.force)

    def mark(self, issues: Sequence[Issue], step: str, key: str) -> None:
        """The step taken, with the message just asked for (in its write transaction; a step
        already there, from another message of this run or a forced rerun, is kept as it is)."""
        fresh = [(i.id, i.deadline) for i in issues if i.id is not None]
        now = self.ctx.now

        def write(s: Session) -> None:
            for issue_id, deadline in fresh:
                assert deadline is not None
                q_ = select(LadderStep.id).where(
                    LadderStep.issue_id == issue_id, LadderStep.deadline == deadline, LadderStep.step == step
                )
                if s.exec(q_).first() is None:  # a forced rerun sends again but keeps the first mark
                    s.add(LadderStep(issue_id=issue_id, deadline=deadline, step=step, sent_at=now, outbox_key=key))
                if step in LATE_STEPS:
                    settle(s, issue_id, deadline)

        self.ctx.then(write)

    def supervise(self, issues: Sequence[Issue], key: str) -> None:
        """In the issue's timeline, as a lead's 督办 would be (read again in the write
        transaction: the case may have moved on since the job read it)."""
        ids, now = [i.id for i in issues], self.ctx.now

        def write(s: Session) -> None:
            for issue_id in ids:
                issue = s.get(Issue, issue_id)
                if issue is not None and issue.status == "assigned":
                    data = {"reason": "逾期自动催办"}
                    record(s, issue, "supervised", actor_id=BOT, at=now, msg_id=key, data=data)

        self.ctx.then(write)

    def due_soon(self, issues: list[Issue]) -> int:
        by_owner: dict[str, list[Issue]] = defaultdict(list)
        for i in issues:
            by_owner[i.owner_id or ""].append(i)
        written = 0
        for owner_id, mine in by_owner.items():
            key = self.key("due_soon", owner_id, _ids(mine))
            if self.ctx.to_users(key, [owner_id], "到期提醒", render.due_soon(self.ctx.directory, mine)):
                self.mark(mine, "due_soon", key)
                written += 1
        return written

    def overdue(self, issues: list[Issue]) -> int:
        by_unit: dict[int, list[Issue]] = defaultdict(list)
        for i in issues:
            by_unit[i.unit_id].append(i)
        written = 0
        for unit_id, here in by_unit.items():
            key = self.key("overdue", f"unit{unit_id}", _ids(here))
            pairs = self.ctx.with_owners(here)
            if self.ctx.groups_or_each_owner(
                key, unit_id, "催办", pairs, lambda some: render.overdue(self.ctx.directory, some, self.today)
            ):
                self.mark(here, "overdue", key)
                self.supervise(here, key)
                written += 1
        return written

    def leads(self, issues: list[Issue]) -> int:
        by_lead: dict[str, list[Issue]] = defaultdict(list)
        for i in issues:
            for lead in q.assigning_lead(self.ctx.session, i):  # the lead who set the deadline
                if lead.id != i.owner_id:  # the owner has had the 催办 already
                    by_lead[lead.id].append(i)
        written = 0
        for lead_id, theirs in by_lead.items():
            key = self.key("leads", lead_id, _ids(theirs))
            pairs = self.ctx.with_owners(theirs)
            text = render.overdue_to_leads(self.ctx.directory, pairs, self.today, LEADS_AFTER)
            if self.ctx.to_users(key, [lead_id], "逾期提醒", text, kind="work"):
                self.mark(theirs, "leads", key)
                written += 1
        return written

    def district(self, issues: list[Issue]) -> int:
        if not issues:
            return 0
        key = self.key("district", _ids(issues))
        text = render.overdue_notice(self.ctx.directory, self.ctx.with_owners(issues), self.today, DISTRICT_AFTER)
        groups = self.ctx.district_groups()
        written = 0
        for cid in groups:
            if self.ctx.to_group(group_key(key, cid), cid, "逾期通报", text):
                self.mark(issues, "district", key)
                written += 1
        return written + self.ding(issues)

    def ding(self, issues: list[Issue]) -> int:
        """A DING to each owner of a case overdue DISTRICT_AFTER working days (their own cases):
        only the person who must act, once per case and deadline (keyed like the notice)."""
        if not self.ctx.ding:
            return 0
        by_owner: dict[str, list[Issue]] = defaultdict(list)
        for i in issues:
            if i.owner_id:
                by_owner[i.owner_id].append(i)
        written = 0
        for owner_id, theirs in by_owner.items():
            key = self.key("ding", owner_id, _ids(theirs))
            text = render.overdue_ding(theirs, self.today, DISTRICT_AFTER)
            written += self.ctx.to_users(key, [owner_id], "DING", text, kind="ding")
        return written


def overdue_ladder(ctx: JobContext) -> int:
    if not ctx.calendar.is_workday(ctx.day):  # also guards a manual run on a day off
        return 0
    ladder = _Ladder(ctx)
    found = ladder.reached()
    return (
        ladder.due_soon(found["due_soon"])
        + ladder.overdue(found["overdue"])
        + ladder.leads(found["leads"])
        + ladder.district(found["district"])
    )
