"""The workday calendar with the org file's `calendar:` overrides, the `schedule:` times, and
when each job falls (holidays and 调休 included)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest

from bot.app import build
from bot.config import Settings
from bot.org import SAMPLE, OrgError, load_org
from models.calendar import CalendarError, WorkdayCalendar, parse_overrides
from models.clock import SHANGHAI, FrozenClock
from schedules.config import DEFAULT_GRACE, ScheduleConfigError, parse_schedule
from schedules.jobs import JOBS, job
from schedules.timing import Timing
from tests.conftest import Chat
from tests.databases import database_url
from tests.scheduling import at


def timing(name: str, calendar: WorkdayCalendar | None = None) -> Timing:
    spec = job(name)
    return Timing(parse_schedule(None).times[name], spec.rule, calendar or WorkdayCalendar())


def test_the_package_knows_2020_national_day_and_its_adjusted_sunday() -> None:
    cal = WorkdayCalendar()
    assert not cal.is_workday(date(2020, 10, 6))  # a Tuesday, National Day holiday
    assert cal.is_workday(date(2020, 9, 27))  # a Sunday, adjusted working day
    assert cal.next_workday(date(2020, 9, 30)) == date(2020, 10, 9)


def test_overrides_win_over_the_package_and_cover_unknown_years() -> None:
    cal = WorkdayCalendar(
        parse_overrides({"holidays": [date(2020, 3, 4), "2027-02-08~2027-02-10"], "workdays": ["2020-10-06"]})
    )
    assert not cal.is_workday(date(2020, 3, 4))  # a Wednesday made a local day off
    assert cal.is_workday(date(2020, 10, 6))  # a holiday made a working day
    assert [cal.is_workday(date(2027, 2, d)) for d in range(8, 12)] == [False, False, False, True]
    assert cal.is_workday(date(2027, 3, 1)) and not cal.is_workday(date(2027, 3, 6))  # weekdays when unknown


@pytest.mark.parametrize(
    ("section", "says"),
    [
        ({"holidays": ["2027-13-01"]}, "「2027-13-01」不是日期"),
        ({"holidays": ["2027-02-10~2027-02-08"]}, "日期范围「2027-02-10~2027-02-08」无效"),
        ({"holidays": [date(2027, 1, 1)], "workdays": ["2027-01-01"]}, "2027-01-01 同时写在"),
        ({"days_off": []}, "不认识「days_off」"),
        ({"holidays": "2027-01-01"}, "calendar.holidays 应为日期列表"),
        (["2027-01-01"], "calendar 应为映射"),
    ],
)
def test_a_bad_calendar_section_is_refused(section: object, says: str) -> None:
    with pytest.raises(CalendarError, match=says):
        parse_overrides(section)


def test_schedule_section_times_and_grace() -> None:
    # An unquoted 16:00 reaches us as YAML 1.1's base-60 integer 960.
    config = parse_schedule({"tuesday_preview": 960, "overdue_ladder": "08:15", "grace_hours": 1.5})
    assert config.times["tuesday_preview"] == time(16, 0)
    assert config.times["overdue_ladder"] == time(8, 15)
    assert config.times["tuesday_morning"] == time(8, 30)  # default kept
    assert config.grace == timedelta(hours=1.5)
    assert parse_schedule(None).grace == DEFAULT_GRACE == timedelta(hours=6)
    for bad in ({"overdue_ladder": "25:00"}, {"grace_hours": 0}, {"grace_hours": True}, {"lunch": "12:00"}):
        with pytest.raises(ScheduleConfigError):
            parse_schedule(bad)


def org_with(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "org.yaml"
    path.write_text(SAMPLE.read_text(encoding="utf-8") + "\n" + extra, encoding="utf-8")
    return path


def test_the_org_file_validator_checks_both_sections_and_names_the_line(tmp_path: Path) -> None:
    lines = len(SAMPLE.read_text(encoding="utf-8").splitlines())
    with pytest.raises(OrgError, match=rf"第{lines + 5}行: YAML 格式错误 \(无效日期「2020-02-30」\)"):
        load_org(org_with(tmp_path, "calendar:\n  holidays:\n    - 2020-03-04\n    - 2020-02-30\n"))
    with pytest.raises(OrgError, match=rf"第{lines + 3}行: calendar.holidays 中的「3月4日」不是日期"):
        load_org(org_with(tmp_path, "calendar:\n  holidays:\n    - 3月4日\n"))
    with pytest.raises(OrgError, match=r'schedule.weekly_digest 的时间「9点」无效,应写成 "09:00"'):
        load_org(org_with(tmp_path, "schedule:\n  weekly_digest: 9点\n"))
    org = load_org(org_with(tmp_path, "calendar:\n  holidays: [2020-03-04]\nschedule:\n  overdue_ladder: 08:45\n"))
    assert org.raw["calendar"]["holidays"] == [date(2020, 3, 4)]


def test_working_day_deadlines_use_the_org_file_overrides(tmp_path: Path) -> None:
    """The dispatcher's calendar is the same one the jobs use: a local day off moves 限N个工作日."""
    org = org_with(tmp_path, "calendar:\n  holidays: [2020-03-04]\n")
    app = build(Settings(database_url=database_url(tmp_path, "c"), org_file=org), FrozenClock(at(date(2020, 3, 3))))
    chat = Chat(app, FrozenClock(at(date(2020, 3, 3))))
    chat.say("d001", "上报 航埠镇新村拖欠工资23人,工人准备集体上访", at=at(date(2020, 3, 3)))
    r = chat.say("d001", "交办 #1 限1个工作日", mentions=("p001",))
    assert "截止 3月5日(周四)" in r.reply  # not 3月4日: that day is off here
    app.engine.dispose()


def test_a_holiday_tuesday_has_no_tuesday_run_and_the_adjusted_sunday_has_a_ladder_run() -> None:
    morning = timing("tuesday_morning")
    assert morning.next_after(at(date(2020, 10, 5))) == datetime(2020, 10, 13, 8, 30, tzinfo=SHANGHAI)
    ladder = timing("overdue_ladder")
    assert ladder.next_after(at(date(2020, 9, 25), 12)) == datetime(2020, 9, 27, 9, 0, tzinfo=SHANGHAI)
    assert ladder.next_after(at(date(2020, 9, 18), 12)) == datetime(
        2020, 9, 21, 9, 0, tzinfo=SHANGHAI
    )  # 20th: Sunday off
    assert ladder.latest_at_or_before(at(date(2020, 10, 8))) == datetime(2020, 9, 30, 9, 0, tzinfo=SHANGHAI)
    # The digest goes on the week's first working day: Friday 9 October after National Day.
    assert timing("weekly_digest").between(at(date(2020, 9, 27)), at(date(2020, 10, 19))) == [
        datetime(2020, 9, 28, 9, 0, tzinfo=SHANGHAI),
        datetime(2020, 10, 9, 9, 0, tzinfo=SHANGHAI),
        datetime(2020, 10, 12, 9, 0, tzinfo=SHANGHAI),
        datetime(2020, 10, 19, 9, 0, tzinfo=SHANGHAI),
    ]
    # The preview still goes out on the holiday Monday, to say Tuesday is off.
    assert timing("tuesday_preview").next_at_or_after(at(date(2020, 10, 5), 12)) == datetime(
        2020, 10, 5, 16, 0, tzinfo=SHANGHAI
    )


def test_every_job_has_a_default_time() -> None:
    assert {j.name for j in JOBS} == set(parse_schedule(None).times)
