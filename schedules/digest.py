"""The weekly digest: to every bound group, scoped to its unit, about the week before."""

from __future__ import annotations

from datetime import date, timedelta

from sqlmodel import col, select

from models.counts import Period
from models.outbox import group_key, job_key
from models.tables import GroupBinding
from schedules import due, render
from schedules.context import JobContext


def last_week(day: date) -> Period:
    monday = day - timedelta(days=day.weekday()) - timedelta(days=7)
    return Period(monday, monday + timedelta(days=6), "上周")


def year_of(week: Period) -> Period:
    # The first week of January still reports the year it belongs to.
    y = week.start.year
    return Period(date(y, 1, 1), date(y, 12, 31), f"{y}年")


def weekly_digest(ctx: JobContext) -> int:
    day = ctx.day
    week = last_week(day)
    year = year_of(week)
    written = 0
    for b in ctx.session.exec(select(GroupBinding).order_by(col(GroupBinding.conversation_id))).all():
        if ctx.groups is not None and b.conversation_id not in ctx.groups:
            continue
        unit = ctx.directory.get(b.unit_id)
        numbers = due.week_of(ctx.session, unit, week, year, day, ctx.now)
        text = render.digest(ctx.directory, ctx.directory.full_name(unit), week, numbers, day)
        key = group_key(job_key("weekly_digest", week.start), b.conversation_id)
        written += ctx.to_group(key, b.conversation_id, "每周通报", text)
    return written
