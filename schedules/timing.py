"""When a job is due: a time of day on the days its rule allows, in Asia/Shanghai, with the
workday calendar. One implementation serves APScheduler (as a trigger), the catch-up after a
restart and `liandong schedule`, so they can never disagree."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from apscheduler.triggers.base import BaseTrigger

from models.calendar import WorkdayCalendar
from models.clock import SHANGHAI, local

DayRule = Callable[[date, WorkdayCalendar], bool]
HORIZON_DAYS = 400  # a rule with no day this far ahead never fires


def mondays(d: date, calendar: WorkdayCalendar) -> bool:
    # Every Monday, holiday or not: a holiday Tuesday is announced by the preview itself.
    return d.weekday() == 0


def working_tuesdays(d: date, calendar: WorkdayCalendar) -> bool:
    return d.weekday() == 1 and calendar.is_workday(d)


def workdays(d: date, calendar: WorkdayCalendar) -> bool:
    return calendar.is_workday(d)


def first_workday_of_week(d: date, calendar: WorkdayCalendar) -> bool:
    """Monday, or the week's first working day when Monday is a holiday (调休 Saturdays count)."""
    monday = d - timedelta(days=d.weekday())
    return calendar.is_workday(d) and not any(
        calendar.is_workday(monday + timedelta(days=i)) for i in range(d.weekday())
    )


@dataclass(frozen=True)
class Timing:
    at: time
    rule: DayRule
    calendar: WorkdayCalendar

    def _on(self, d: date) -> datetime:
        return datetime.combine(d, self.at, tzinfo=SHANGHAI)

    def next_at_or_after(self, t: datetime) -> datetime | None:
        start = local(t).date()
        for i in range(HORIZON_DAYS):
            d = start + timedelta(days=i)
            if self.rule(d, self.calendar) and self._on(d) >= t:
                return self._on(d)
        return None

    def next_after(self, t: datetime) -> datetime | None:
        return self.next_at_or_after(t + timedelta(microseconds=1))

    def latest_at_or_before(self, t: datetime) -> datetime | None:
        start = local(t).date()
        for i in range(HORIZON_DAYS):
            d = start - timedelta(days=i)
            if self.rule(d, self.calendar) and self._on(d) <= t:
                return self._on(d)
        return None

    def between(self, after: datetime, until: datetime) -> list[datetime]:
        """Occurrences in (after, until], oldest first."""
        found: list[datetime] = []
        t = self.next_after(after)
        while t is not None and t <= until:
            found.append(t)
            t = self.next_after(t)
        return found


class TimingTrigger(BaseTrigger):
    """APScheduler 3 trigger over a Timing (its own cron cannot ask the holiday calendar)."""

    __slots__ = ("timing",)

    def __init__(self, timing: Timing) -> None:
        self.timing = timing

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        if previous_fire_time is not None:
            return self.timing.next_after(previous_fire_time)
        return self.timing.next_at_or_after(now)

    def __str__(self) -> str:
        return f"timing[{self.timing.at:%H:%M} {self.timing.rule.__name__}]"
