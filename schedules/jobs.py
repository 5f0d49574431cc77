"""The jobs and their days, in one table (no registration by import side effect)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from schedules.context import JobContext
from schedules.digest import weekly_digest
from schedules.ladder import overdue_ladder
from schedules.timing import DayRule, first_workday_of_week, mondays, workdays, working_tuesdays
from schedules.tuesday import tuesday_evening, tuesday_morning, tuesday_preview


@dataclass(frozen=True)
class JobSpec:
    name: str
    title: str  # what `liandong schedule` shows
    rule: DayRule
    body: Callable[[JobContext], int]  # returns how many messages it wrote
    reminder: bool = True  # run by `liandong remind` on its days


JOBS: tuple[JobSpec, ...] = (
    JobSpec("tuesday_preview", "周一 预告明天周二无会日的办理件(区级群)", mondays, tuesday_preview),
    JobSpec("tuesday_morning", "周二(工作日) @包案领导 今日周二无会日待办", working_tuesdays, tuesday_morning),
    JobSpec("tuesday_evening", "周二(工作日) 周二无会日当天办理情况", working_tuesdays, tuesday_evening, False),
    JobSpec("overdue_ladder", "工作日 到期提醒、逾期催办、告知领导、逾期通报", workdays, overdue_ladder),
    JobSpec("weekly_digest", "每周第一个工作日 各群上周通报", first_workday_of_week, weekly_digest, False),
)
JOB_NAMES = tuple(j.name for j in JOBS)


def job(name: str) -> JobSpec:
    """The job of that name; KeyError when there is none."""
    for j in JOBS:
        if j.name == name:
            return j
    raise KeyError(name)
