"""Every sentence the scheduled jobs say: short Chinese, one phone screen, masked, @-mentioning
only who must act. (The chat replies live in handlers/replies.py.)"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from models.calendar import WorkdayCalendar
from models.clock import local, short_date
from models.counts import Period
from models.directory import Directory
from models.masking import mask
from models.rules import days_overdue
from models.tables import Issue, Person
from schedules.due import Week

MAX_LINES = 10  # items listed in one message; the rest are counted


def place(directory: Directory, issue: Issue) -> str:
    return directory.place(issue.township_id, issue.village_id)


def due_text(issue: Issue, today: date, calendar: WorkdayCalendar) -> str:
    d = issue.deadline
    if d is None:
        return "未设截止日期"
    if late := days_overdue(issue.status, d, today):
        return f"已逾期 {late} 天"
    if d == today:
        return "今天到期"
    left = calendar.workdays_between(today, d)
    return f"剩 {left} 个工作日" if left else f"{short_date(d)}到期"


def _line(directory: Directory, issue: Issue, tail: str) -> str:
    return f"#{issue.id} {mask(issue.title)}({place(directory, issue)})· {tail}"


def _capped(lines: list[str], total: int | None = None) -> list[str]:
    total = len(lines) if total is None else total
    shown = lines[:MAX_LINES]
    return [*shown, f"……另有 {total - len(shown)} 件"] if total > len(shown) else shown


def _md(d: date) -> str:
    return f"{d.month}月{d.day}日"


def tuesday_preview(
    directory: Directory, tuesday: date, cases: Sequence[tuple[Person, Issue]], calendar: WorkdayCalendar
) -> str:
    # Names without @: nobody has to act before tomorrow's reminder.
    lines = [f"【周二无会日预告】明天 {short_date(tuesday)} 待办 {len(cases)} 件"]
    lines += _capped([f"{p.name} " + _line(directory, i, due_text(i, tuesday, calendar)) for p, i in cases])
    return "\n".join(lines)


def tuesday_holiday(tuesday: date, next_tuesday: date | None, count: int) -> str:
    later = f",{count} 件办理件顺延至 {short_date(next_tuesday)}" if next_tuesday else ""
    return f"【周二无会日预告】明天 {short_date(tuesday)} 为节假日,周二无会日暂停{later}。"


def tuesday_morning(
    directory: Directory, day: date, cases: Sequence[tuple[Person, Issue]], calendar: WorkdayCalendar
) -> str:
    lines = [f"【周二无会日】今日待办 {len(cases)} 件"]
    lines += _capped([f"@{p.name} " + _line(directory, i, due_text(i, day, calendar)) for p, i in cases])
    return "\n".join(lines)


def tuesday_evening(
    directory: Directory,
    day: date,
    done: Sequence[tuple[Person, Issue]],
    still_open: Sequence[tuple[Person, Issue]],
    calendar: WorkdayCalendar,
) -> str:
    lines = [f"【周二无会日】{_md(day)}办理情况:化解 {len(done)} 件,仍在办 {len(still_open)} 件"]
    items = [f"√ {p.name} " + _line(directory, i, "已化解") for p, i in done]
    items += [f"⏳ {p.name} " + _line(directory, i, due_text(i, day, calendar)) for p, i in still_open]
    return "\n".join(lines + _capped(items))


def due_soon(directory: Directory, issues: Sequence[Issue]) -> str:
    if len(issues) == 1:
        i = issues[0]
        assert i.deadline is not None
        return (
            f"【到期提醒】#{i.id} {mask(i.title)} 将于 {short_date(i.deadline)} 到期,请抓紧办理并「反馈 #{i.id}」;"
            f"需要延期请回复「延期 #{i.id} N个工作日 原因」。"
        )
    lines = [f"【到期提醒】你有 {len(issues)} 件即将到期,请抓紧办理:"]
    lines += _capped([_line(directory, i, f"截止 {short_date(i.deadline)}") for i in issues if i.deadline])
    return "\n".join(lines)


def overdue(directory: Directory, cases: Sequence[tuple[Person, Issue]], today: date) -> str:
    lines = ["【催办】以下问题已逾期,请尽快办理并反馈进展:"]
    lines += _capped([f"@{p.name} " + _line(directory, i, f"已逾期 {_late(i, today)} 天") for p, i in cases])
    return "\n".join(lines)


def overdue_to_leads(directory: Directory, cases: Sequence[tuple[Person, Issue]], today: date, after: int) -> str:
    lines = [f"【逾期提醒】以下问题逾期已满 {after} 个工作日,请督促办理:"]
    lines += _capped([_line(directory, i, f"包案 {p.name} · 逾期 {_late(i, today)} 天") for p, i in cases])
    return "\n".join(lines)


def overdue_notice(directory: Directory, cases: Sequence[tuple[Person, Issue]], today: date, after: int) -> str:
    lines = [f"【逾期通报】以下问题逾期已满 {after} 个工作日:"]
    lines += _capped([_line(directory, i, f"包案 {p.name} · 逾期 {_late(i, today)} 天") for p, i in cases])
    return "\n".join(lines)


def overdue_ding(cases: Sequence[Issue], today: date, after: int) -> str:
    """A DING's content: plain text (DING shows no markdown), the case numbers only, short."""
    ids = "、".join(f"#{i.id}" for i in cases[:10]) + (f" 等 {len(cases)} 件" if len(cases) > 10 else "")
    return f"两难助手:{ids} 逾期已满 {after} 个工作日,请尽快办结并反馈。"


def _late(issue: Issue, today: date) -> int:
    return days_overdue(issue.status, issue.deadline, today)


def digest(directory: Directory, unit_name: str, week: Period, w: Week, today: date) -> str:
    head = f"【每周两难问题通报】{unit_name} · {_md(week.start)}–{_md(week.end)}"
    year_has_numbers = any(vars(w.counts).values())
    if w.empty:
        lines = [head, "本周无新增、无办结,目前没有在办问题。"]
    else:
        late = ""
        if w.overdue:
            shown = " ".join(f"#{n}" for n in w.overdue_first)
            late = f"({shown}{f' 等{w.overdue}件' if w.overdue > len(w.overdue_first) else ''})"
        # 办结, not 化解: the week counts a case closed at any level, and the district says 化解
        # only of those it closed itself (the year's 区级 line below).
        lines = [head, f"新增 {w.new} · 办结 {w.resolved} · 在办 {w.open} · 逾期 {w.overdue}{late}"]
        if w.oldest:
            lines.append("在办最久:")
            lines += [_line(directory, i, f"已 {(today - local(i.created_at).date()).days} 天") for i in w.oldest]
    if year_has_numbers:
        ended = w.year.end < today
        lines.append(f"{w.year.label}统计" + ("" if ended else f"(截至{_md(today)})") + ":")
        lines += w.counts.lines()
    return "\n".join(lines)
