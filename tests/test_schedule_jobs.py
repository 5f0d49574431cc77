"""The jobs, driven with explicit times: 周二无会日 preview/morning/evening, the overdue ladder
over a case's life, and the weekly digest whose numbers are 统计's."""

from __future__ import annotations

from datetime import date, timedelta

from sqlmodel import Session

from models import queries as q
from models.verify import verify_chains
from schedules.jobs import job
from schedules.timing import Timing
from tests.conftest import Chat
from tests.scheduling import at, district_case, runner_at, runs, scheduled

HOMESTEAD = "花园街道上洋村村民李某反映宅基地审批提交8个月仍未批复,联系电话13812345678"
WAGES = "航埠镇新村拖欠工资23人,涉及金额40万元,工人准备集体上访"


def seed_tuesday_cases(chat: Chat) -> None:
    """#1 钱七 and #2 孙八 are open Tuesday cases on Tuesday 1 December 2020; #3 is not a
    Tuesday case; #4 was a Tuesday case, already resolved."""
    district_case(chat, HOMESTEAD, "p001", at(date(2020, 11, 24)), "区自然资源局 限10个工作日 周二无会日")
    district_case(chat, WAGES, "d002", at(date(2020, 11, 25)), "周二无会日 截止11月30日")
    district_case(chat, "全区多个小区物业费纠纷集中爆发,业主情绪激动", "p002", at(date(2020, 11, 25)), "限5天")
    district_case(chat, "某企业厂房噪音扰民,周边居民多次投诉", "p001", at(date(2020, 11, 26)), "周二无会日")
    assert chat.say("p001", "化解 #4 已督促企业整改", at=at(date(2020, 11, 27))).outcome == "ok"


def test_tuesday_morning_mentions_each_owner_with_their_own_cases_once(chat: Chat) -> None:
    seed_tuesday_cases(chat)
    tuesday = at(date(2020, 12, 1), 8, 30)
    result = runner_at(chat, tuesday).run("tuesday_morning", tuesday)
    assert result.status == "done"
    [row] = scheduled(chat)
    assert (row.key, row.kind, row.conversation_id) == (
        "sched:tuesday_morning:2020-12-01:cid-district",
        "group",
        "cid-district",
    )
    assert row.at_user_ids == ["d002", "p001"]
    assert row.text == (
        "【周二无会日】今日待办 2 件\n"
        "@孙八 #2 航埠镇新村拖欠工资23人,涉及金额40万元,工人准备集体上访(航埠镇·新村)· 已逾期 1 天\n"
        "@钱七 #1 宅基地审批提交8个月仍未批复,联系电话138****5678(花园街道·上洋村)· 剩 5 个工作日"
    )
    # A second run of the same occurrence, or a manual run, writes nothing new.
    assert runner_at(chat, tuesday + timedelta(hours=1)).run("tuesday_morning", tuesday).status == "skipped"
    assert runner_at(chat, tuesday + timedelta(hours=1)).run("tuesday_morning", None, trigger="manual").sent == ()
    assert len(scheduled(chat)) == 1


def test_monday_preview_and_tuesday_evening(chat: Chat) -> None:
    seed_tuesday_cases(chat)
    monday = at(date(2020, 11, 30), 16)
    runner_at(chat, monday).run("tuesday_preview", monday)
    [preview] = scheduled(chat, "sched:tuesday_preview:")
    assert preview.key == "sched:tuesday_preview:2020-12-01:cid-district"
    assert preview.at_user_ids == []  # nobody has to act before tomorrow morning
    assert preview.text.splitlines()[0] == "【周二无会日预告】明天 12月1日(周二) 待办 2 件"
    assert preview.text.splitlines()[1].startswith("孙八 #2 ") and preview.text.splitlines()[2].startswith("钱七 #1 ")

    assert chat.say("p001", "化解 #1 已现场认定,补办手续", at=at(date(2020, 12, 1), 15)).outcome == "ok"
    evening = at(date(2020, 12, 1), 17, 30)
    runner_at(chat, evening).run("tuesday_evening", evening)
    [summary] = scheduled(chat, "sched:tuesday_evening:")
    assert summary.at_user_ids == []
    lines = summary.text.splitlines()
    assert lines[0] == "【周二无会日】12月1日办理情况:化解 1 件,仍在办 1 件"
    assert lines[1].startswith("√ 钱七 #1 ") and lines[1].endswith("· 已化解")  # no emoji: old PCs show a box
    assert lines[2].startswith("⏳ 孙八 #2 ") and lines[2].endswith("· 已逾期 1 天")


def test_a_holiday_tuesday_sends_no_tuesday_messages_and_the_preview_says_so(chat: Chat) -> None:
    district_case(chat, HOMESTEAD, "p001", at(date(2020, 9, 29)), "限20个工作日 周二无会日")
    monday = at(date(2020, 10, 5), 16)  # National Day holidays run to 8 October
    runner_at(chat, monday).run("tuesday_preview", monday)
    [preview] = scheduled(chat)
    assert (
        preview.text == "【周二无会日预告】明天 10月6日(周二) 为节假日,周二无会日暂停,1 件办理件顺延至 10月13日(周二)。"
    )
    for name, hh, mm in (("tuesday_morning", 8, 30), ("tuesday_evening", 17, 30)):
        when = at(date(2020, 10, 6), hh, mm)
        assert runner_at(chat, when).run(name, when).sent == ()
        timing = runner_at(chat, when).timing(job(name))
        assert isinstance(timing, Timing) and timing.latest_at_or_before(when) == at(date(2020, 9, 29), hh, mm)
    # A catch-up on the holiday has no Tuesday occurrence to run either.
    runner_at(chat, at(date(2020, 10, 6), 18)).catch_up()
    assert [r.key for r in scheduled(chat)] == [preview.key]


def ladder_day(chat: Chat, d: date) -> list[tuple[str, str]]:
    """Run the ladder for that day (twice: the second must add nothing); (step, target) written."""
    nine = at(d, 9)
    before = {r.key for r in scheduled(chat)}
    runner_at(chat, nine).run("overdue_ladder", nine)
    runner_at(chat, nine + timedelta(hours=2)).run("overdue_ladder", None, trigger="manual")
    new = [r for r in scheduled(chat) if r.key not in before]
    return [(r.key.split(":")[3], r.conversation_id or "user:" + ",".join(r.user_ids)) for r in new]


def test_the_ladder_sends_each_step_once_and_stops_when_resolved(chat: Chat) -> None:
    r = chat.say("t001", "上报 东港社区加装电梯意见不一,邻里矛盾激化,有人扬言起诉", at=at(date(2020, 3, 2)))
    assert r.issue_id == 1
    assert chat.say("t101", "交办 #1 限3天", mentions=("t001",)).reply.endswith("截止 3月5日(周四)。")
    seen: dict[date, list[tuple[str, str]]] = {}
    d = date(2020, 3, 3)
    while d <= date(2020, 3, 13):
        if chat.app.dispatcher.calendar.is_workday(d):
            seen[d] = ladder_day(chat, d)
        d += timedelta(days=1)
    assert {d: s for d, s in seen.items() if s} == {
        date(2020, 3, 4): [("due_soon", "user:t001")],
        date(2020, 3, 6): [("overdue", "cid-huayuan")],  # the issue's own group, @ the owner
        date(2020, 3, 9): [("leads", "user:t101")],  # overdue 2 working days: the township lead
        date(2020, 3, 12): [("district", "cid-district")],  # 5 working days: 通报
    }
    rows = {r.key.split(":")[3]: r for r in scheduled(chat)}
    assert rows["overdue"].at_user_ids == ["t001"] and rows["overdue"].text.startswith("【催办】")
    assert "@" not in rows["district"].text and rows["district"].at_user_ids == []
    assert "逾期 7 天" in rows["district"].text and "包案 王小明" in rows["district"].text
    with Session(chat.app.engine) as s:
        kinds = [(e.kind, e.actor_id) for e in q.events_of(s, 1)]
        assert kinds.count(("supervised", "两难助手")) == 1  # the 催办 is in the timeline
        assert verify_chains(s) == []

    assert chat.say("t001", "办结 #1 已协调加装方案,签字同意", at=at(date(2020, 3, 13), 10)).outcome == "ok"
    assert ladder_day(chat, date(2020, 3, 16)) == [] and ladder_day(chat, date(2020, 3, 17)) == []


def test_a_new_deadline_starts_the_ladder_again(chat: Chat) -> None:
    district_case(chat, WAGES, "p002", at(date(2020, 3, 2)), "限3天")
    assert ladder_day(chat, date(2020, 3, 4)) == [("due_soon", "user:p002")]
    assert chat.say("p002", "延期 #1 3天 等待仲裁结果", at=at(date(2020, 3, 4), 11)).outcome == "ok"
    assert chat.say("d001", "同意延期 #1").reply.startswith("#1 已同意延期,新截止 3月8日(周日)")
    assert ladder_day(chat, date(2020, 3, 5)) == []
    assert ladder_day(chat, date(2020, 3, 6)) == [("due_soon", "user:p002")]  # Sunday's deadline, told on Friday
    assert ladder_day(chat, date(2020, 3, 9)) == [("overdue", "cid-district")]


def test_the_adjusted_working_sunday_counts_for_the_ladder(chat: Chat) -> None:
    district_case(chat, WAGES, "p002", at(date(2020, 9, 21)), "截止9月25日")
    runner = runner_at(chat, at(date(2020, 9, 28), 10))
    ladder = runner.timing(job("overdue_ladder"))
    days = [t.date() for t in ladder.between(at(date(2020, 9, 24)), at(date(2020, 9, 30)))]
    assert days == [date(2020, 9, 25), date(2020, 9, 27), date(2020, 9, 28), date(2020, 9, 29), date(2020, 9, 30)]
    assert ladder_day(chat, date(2020, 9, 27)) == [("overdue", "cid-district")]  # Sunday, a working day
    assert ladder_day(chat, date(2020, 9, 28)) == [("leads", "user:d001")]  # the lead who assigned it
    # On an ordinary Sunday the ladder does nothing even when asked.
    assert ladder_day(chat, date(2020, 10, 4)) == []


def test_nothing_is_sent_when_there_is_nothing_to_say(chat: Chat) -> None:
    chat.say("v001", "上报 上洋村道路塌方影响通行,需要尽快修复", at=at(date(2020, 11, 24)))  # no owner, no deadline
    district_case(chat, WAGES, "p002", at(date(2020, 11, 24)))  # assigned on a Tuesday, no deadline
    chat.say("d001", "化解 #2 已结清工资", at=at(date(2020, 11, 25)))
    for name, d, hh, mm in (
        ("tuesday_preview", date(2020, 11, 30), 16, 0),
        ("tuesday_morning", date(2020, 12, 1), 8, 30),
        ("tuesday_evening", date(2020, 12, 1), 17, 30),
        ("overdue_ladder", date(2020, 12, 1), 9, 0),
    ):
        result = runner_at(chat, at(d, hh, mm)).run(name, at(d, hh, mm))
        assert (result.status, result.sent) == ("done", ())
    assert scheduled(chat) == []
    assert [r.messages for r in runs(chat)] == [0, 0, 0, 0]  # each run is recorded all the same


def seed_weeks(chat: Chat) -> None:
    """Cases before and during the week of 9–15 March 2020 (a digest on Monday 16 March)."""
    assert chat.say("v001", "上报 上洋村宅基地审批提交8个月仍未批复", at=at(date(2020, 3, 3))).issue_id == 1
    assert chat.say("v001", "上报 上洋村道路塌方影响通行,需要尽快修复", at=at(date(2020, 3, 10))).issue_id == 2
    assert chat.say("v001", "办结 #2 已修复通车", at=at(date(2020, 3, 11))).outcome == "ok"
    assert chat.say("v004", "上报 新村拖欠工资23人,工人准备集体上访", at=at(date(2020, 3, 10))).issue_id == 3
    assert chat.say("v004", "上报 #3 村里无法协调").outcome == "ok"
    assert chat.say("t102", "交办 #3 限2天", mentions=("t002",)).outcome == "ok"
    district_case(
        chat, "全区多个小区物业费纠纷集中爆发,业主情绪激动", "p001", at(date(2020, 3, 11)), "周二无会日 限30天"
    )
    district_case(chat, "某企业厂房噪音扰民,周边居民多次投诉", "p002", at(date(2020, 3, 12)))
    assert chat.say("p002", "化解 #5 已督促企业整改", at=at(date(2020, 3, 13))).outcome == "ok"
    r = chat.say("v001", "上报 上洋村宅基地审批迟迟没有批复,联系电话13812345678", at=at(date(2020, 3, 12)))
    assert r.issue_id == 6
    assert chat.say("v001", "合并 #1 #6").outcome == "ok"  # a duplicate: not counted anywhere


def test_the_weekly_digest_per_group_and_its_numbers_equal_statistics(chat: Chat) -> None:
    seed_weeks(chat)
    monday = at(date(2020, 3, 16), 9)
    runner_at(chat, monday).run("weekly_digest", monday)
    digests = {r.conversation_id: r for r in scheduled(chat)}
    assert set(digests) == {"cid-district", "cid-huayuan", "cid-hangbu", "cid-shiliang", "cid-shangyang"}
    assert all(r.key == f"sched:weekly_digest:2020-03-09:{cid}" and r.at_user_ids == [] for cid, r in digests.items())
    district = digests["cid-district"].text.splitlines()
    assert district[:6] == [
        "【每周两难问题通报】柯城区 · 3月9日–3月15日",
        "新增 4 · 办结 2 · 在办 3 · 逾期 1(#3)",
        "在办最久:",
        "#1 上洋村宅基地审批提交8个月仍未批复(花园街道·上洋村)· 已 13 天",
        "#3 新村拖欠工资23人,工人准备集体上访(航埠镇·新村)· 已 6 天",
        "#4 全区多个小区物业费纠纷集中爆发,业主情绪激动(柯城区)· 已 5 天",
    ]
    assert district[6] == "2020年统计(截至3月16日):"
    assert digests["cid-huayuan"].text.splitlines()[1] == "新增 1 · 办结 1 · 在办 1 · 逾期 0"
    assert digests["cid-hangbu"].text.splitlines()[1] == "新增 1 · 办结 0 · 在办 1 · 逾期 1(#3)"
    assert digests["cid-shangyang"].text.splitlines()[0] == "【每周两难问题通报】花园街道·上洋村 · 3月9日–3月15日"
    assert (
        digests["cid-shiliang"].text
        == "【每周两难问题通报】石梁镇 · 3月9日–3月15日\n本周无新增、无办结,目前没有在办问题。"
    )
    assert all("13812345678" not in r.text for r in digests.values())

    # The §1 paragraph is 统计's, for the same unit, period and moment.
    for cid, person in (
        ("cid-district", "d001"),
        ("cid-huayuan", "t101"),
        ("cid-hangbu", "t102"),
        ("cid-shangyang", "v001"),
    ):
        stats = chat.say(person, "统计 本年", at=monday).reply.splitlines()
        assert stats[0].startswith("【统计】2020年 · ")
        assert digests[cid].text.splitlines()[-3:] == stats[1:4], cid
    assert district[-3].startswith("区级 交办2 · 化解1(周二无会日 1/")

    # Never twice: the same occurrence again, or on demand.
    assert runner_at(chat, monday).run("weekly_digest", monday).status == "skipped"
    assert runner_at(chat, monday + timedelta(hours=3)).run("weekly_digest", None, trigger="manual").sent == ()
    assert len(scheduled(chat)) == 5


def test_the_digest_counts_every_overdue_case_and_names_the_first_five() -> None:
    from bot.org import load_org
    from models.counts import LevelCounts, Period
    from schedules import render
    from schedules.due import Week

    week = Period(date(2020, 11, 30), date(2020, 12, 6), "本周")
    year = Period(date(2020, 1, 1), date(2020, 12, 31), "2020年")
    zero = LevelCounts(*([0] * 10))
    w = Week(new=1, resolved=0, open=9, overdue=7, overdue_first=[3, 5, 8, 9, 12], oldest=[], year=year, counts=zero)
    text = render.digest(load_org().directory, "柯城区", week, w, date(2020, 12, 7))
    assert "逾期 7(#3 #5 #8 #9 #12 等7件)" in text
