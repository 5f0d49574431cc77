"""周二无会日: Monday's preview, the Tuesday morning reminder and the Tuesday evening summary,
all about district cases whose current assignment is a Tuesday one."""

from __future__ import annotations

from datetime import date, timedelta

from models.clock import local
from models.outbox import group_key, job_key
from schedules import due, render
from schedules.context import JobContext
from schedules.timing import working_tuesdays


def next_tuesday(d: date) -> date:
    return d + timedelta(days=(1 - d.weekday()) % 7 or 7)


def tuesday_preview(ctx: JobContext) -> int:
    tuesday = next_tuesday(ctx.day)
    pairs = ctx.with_owners([i for i in due.tuesday_cases(ctx.session) if i.status == "assigned"])
    if not pairs:
        return 0
    working = ctx.calendar.is_workday
    if working(tuesday):
        text = render.tuesday_preview(ctx.directory, tuesday, pairs, ctx.calendar)
    else:
        later = next((t for t in (tuesday + timedelta(weeks=k) for k in range(1, 9)) if working(t)), None)
        text = render.tuesday_holiday(tuesday, later, len(pairs))
    key = job_key("tuesday_preview", tuesday)
    return sum(ctx.to_group(group_key(key, cid), cid, "周二无会日预告", text) for cid in ctx.district_groups())


def tuesday_morning(ctx: JobContext) -> int:
    day = ctx.day
    if not working_tuesdays(day, ctx.calendar):  # also guards a manual run on another day
        return 0
    pairs = ctx.with_owners([i for i in due.tuesday_cases(ctx.session) if i.status == "assigned"])
    if not pairs:
        return 0
    return int(
        ctx.groups_or_each_owner(
            job_key("tuesday_morning", day),
            ctx.directory.district.id,
            "周二无会日",
            pairs,
            lambda some: render.tuesday_morning(ctx.directory, day, some, ctx.calendar),
            # A 包案领导 not in the district group hears of it by a work notification: the day
            # set aside for the case matters beyond chat (one to one without an AgentId).
            direct="work",
        )
    )


def tuesday_evening(ctx: JobContext) -> int:
    day = ctx.day
    if not working_tuesdays(day, ctx.calendar):
        return 0
    cases = due.tuesday_cases(ctx.session)
    done = [i for i in cases if i.status == "resolved" and i.resolved_at and local(i.resolved_at).date() == day]
    still_open = [i for i in cases if i.status == "assigned"]
    if not done and not still_open:
        return 0
    text = render.tuesday_evening(ctx.directory, day, ctx.with_owners(done), ctx.with_owners(still_open), ctx.calendar)
    key = job_key("tuesday_evening", day)
    return sum(ctx.to_group(group_key(key, cid), cid, "周二无会日", text) for cid in ctx.district_groups())
