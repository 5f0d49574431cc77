"""`liandong schedule`, `liandong digest` and `liandong remind`, against the chat's database."""

from __future__ import annotations

from datetime import date

import pytest

from bot.cli import main as cli
from tests.conftest import Chat
from tests.scheduling import at, district_case, runs, scheduled

WAGES = "航埠镇新村拖欠工资23人,涉及金额40万元,工人准备集体上访"


@pytest.fixture
def db(chat: Chat, monkeypatch: pytest.MonkeyPatch) -> Chat:
    monkeypatch.setenv("DATABASE_URL", chat.app.settings.database_url)
    return chat


def test_schedule_lists_the_next_runs_around_national_day(db: Chat, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["schedule", "--at", "2020-10-05T12:00"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("以 2020-10-05T12:00:00+08:00 为准(Asia/Shanghai);停机错过的运行在 6 小时内补发")
    assert [line.split()[:2] for line in out[1:]] == [
        ["tuesday_preview", "2020-10-05T16:00:00+08:00"],
        ["tuesday_morning", "2020-10-13T08:30:00+08:00"],  # 6 October is a holiday
        ["tuesday_evening", "2020-10-13T17:30:00+08:00"],
        ["overdue_ladder", "2020-10-09T09:00:00+08:00"],
        ["weekly_digest", "2020-10-09T09:00:00+08:00"],  # the week's first working day
    ]


def test_schedule_shows_the_last_recorded_run(db: Chat, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["remind", "--at", "2020-12-01T08:00", "--now"]) == 0  # a manual run is no occurrence
    db.clock.at = at(date(2020, 12, 1), 10)
    db.app.job_runner(db.clock).catch_up()
    capsys.readouterr()
    assert cli(["schedule", "--at", "2020-12-01T12:00"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert lines["tuesday_morning"].endswith("· 上次 2020-12-01T08:30:00+08:00 done")
    assert lines["tuesday_preview"].endswith("· 上次 2020-11-30T16:00:00+08:00 missed")


def test_digest_for_one_group_is_previewed_sent_once_and_forced(db: Chat, capsys: pytest.CaptureFixture[str]) -> None:
    district_case(db, WAGES, "t002", at(date(2020, 12, 1)))
    args = ["digest", "--group", "cid-hangbu", "--at", "2020-12-07T10:00"]
    assert cli(args) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "→ 群 cid-hangbu\n【每周两难问题通报】航埠镇 · 11月30日–12月6日\n新增 1 · 办结 0 · 在办 1 · 逾期 0\n"
    )
    assert out.endswith("以上为预览,没有发送;加 --now 发送。\n") and scheduled(db) == []

    assert cli([*args, "--now"]) == 0
    assert "已写入发送队列 1 条" in capsys.readouterr().out
    assert [r.key for r in scheduled(db)] == ["sched:weekly_digest:2020-11-30:cid-hangbu"]
    assert cli([*args, "--now"]) == 0
    assert "没有要发送的内容" in capsys.readouterr().out and len(scheduled(db)) == 1
    assert cli([*args, "--now", "--force"]) == 0
    keys = [r.key for r in scheduled(db)]
    assert len(keys) == 2 and keys[1].startswith("sched:weekly_digest:2020-11-30:cid-hangbu:force:")
    assert [(r.trigger, r.due_at) for r in runs(db)] == [("manual", None)] * 3

    # The scheduled digest later that Monday leaves this group alone and sends the others.
    db.clock.at = at(date(2020, 12, 7), 10, 30)
    db.app.job_runner(db.clock).run("weekly_digest", at(date(2020, 12, 7), 9))
    hangbu = [r for r in scheduled(db) if r.conversation_id == "cid-hangbu"]
    assert len(hangbu) == 2 and len(scheduled(db)) == 6


def test_digest_refuses_an_unbound_group(db: Chat, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["digest", "--group", "cid-nowhere", "--now"]) == 2
    assert "未绑定" in capsys.readouterr().err


def test_remind_runs_the_reminders_of_the_day(db: Chat, capsys: pytest.CaptureFixture[str]) -> None:
    district_case(db, WAGES, "d002", at(date(2020, 11, 24)), "周二无会日 截止11月30日")
    assert cli(["remind", "--at", "2020-12-01T08:00", "--now"]) == 0
    out = capsys.readouterr().out
    assert "→ 群 cid-district · @d002\n【周二无会日】今日待办 1 件\n@孙八 #1 " in out
    assert "→ 群 cid-district · @d002\n【催办】" in out and "已写入发送队列 2 条" in out
    assert sorted(r.key.split(":")[1] for r in scheduled(db)) == ["overdue_ladder", "tuesday_morning"]
    # The 08:30 run then finds the reminder sent.
    db.clock.at = at(date(2020, 12, 1), 8, 30)
    assert db.app.job_runner(db.clock).run("tuesday_morning", db.clock.at).sent == ()

    assert cli(["remind", "--at", "2020-10-06T08:00", "--now"]) == 0
    assert capsys.readouterr().out == "10月6日(周二)不是提醒日(节假日或休息日),没有提醒。\n"
