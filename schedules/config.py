"""When the jobs run: the times of day and the catch-up grace, from the optional `schedule:`
section of the org file (defaults from PRODUCT §5):

    schedule:
      tuesday_preview: "16:00"   # Mondays
      tuesday_morning: "08:30"   # Tuesdays that are working days
      tuesday_evening: "17:30"
      overdue_ladder: "09:00"    # working days
      weekly_digest: "09:00"     # the first working day of each week
      grace_hours: 6             # a run missed while down is still done this late, else recorded as missed
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from typing import Any

DEFAULT_TIMES = {
    "tuesday_preview": time(16, 0),
    "tuesday_morning": time(8, 30),
    "tuesday_evening": time(17, 30),
    "overdue_ladder": time(9, 0),
    "weekly_digest": time(9, 0),
}
DEFAULT_GRACE = timedelta(hours=6)
MAX_GRACE_HOURS = 72


class ScheduleConfigError(ValueError):
    """A bad `schedule:` section; the message names the entry, in Chinese."""


@dataclass(frozen=True)
class ScheduleConfig:
    times: dict[str, time] = field(default_factory=lambda: dict(DEFAULT_TIMES))
    grace: timedelta = DEFAULT_GRACE


def parse_schedule(section: Any) -> ScheduleConfig:
    """The `schedule:` section (None when the file has none). Raises ScheduleConfigError."""
    if section is None:
        return ScheduleConfig()
    if not isinstance(section, Mapping):
        raise ScheduleConfigError('schedule 应为映射,如 {overdue_ladder: "09:00", grace_hours: 6}')
    times = dict(DEFAULT_TIMES)
    grace = DEFAULT_GRACE
    for key, value in section.items():
        if key == "grace_hours":
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_GRACE_HOURS:
                raise ScheduleConfigError(f"schedule.grace_hours 应为 0 到 {MAX_GRACE_HOURS} 之间的小时数")
            grace = timedelta(hours=value)
        elif key in times:
            times[key] = _time_of_day(key, value)
        else:
            known = "、".join([*DEFAULT_TIMES, "grace_hours"])
            raise ScheduleConfigError(f"schedule 不认识「{key}」,可用:{known}")
    return ScheduleConfig(times, grace)


def _time_of_day(key: str, value: Any) -> time:
    # YAML 1.1 reads an unquoted 16:00 as the base-60 integer 960: take it as minutes.
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        return time(*divmod(value, 60))
    m = re.fullmatch(r"(\d{1,2})[:：](\d{2})", str(value).strip())
    if m and int(m.group(1)) < 24 and int(m.group(2)) < 60:
        return time(int(m.group(1)), int(m.group(2)))
    raise ScheduleConfigError(f'schedule.{key} 的时间「{value}」无效,应写成 "09:00"')
