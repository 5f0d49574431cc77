"""The trampoline, catch-up after downtime, the leader lock and the async scheduler handle:
never twice, never silently missed. Frozen clocks only; the one real process is synchronised
by reading its output, not by sleeping."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest

from bot.app import App, build
from bot.config import Settings
from bot.org import SAMPLE
from models.clock import FrozenClock
from schedules import runner as runner_module
from schedules.config import ScheduleConfig
from schedules.jobs import job
from schedules.leader import FileLock, leader_lock
from schedules.runs import JobRunner
from tests.conftest import Chat
from tests.databases import database_url
from tests.scheduling import HOMESTEAD_FOR_RUNS, at, district_case, runner_at, runs, scheduled

TUESDAY = date(2020, 12, 1)


def seed(chat: Chat) -> None:
    district_case(chat, HOMESTEAD_FOR_RUNS, "p001", at(date(2020, 11, 24)), "限10个工作日 周二无会日")


def with_grace(chat: Chat, hours: float) -> JobRunner:
    r = runner_at(chat, chat.clock.at)
    return JobRunner(r.engine, r.calendar, ScheduleConfig(grace=timedelta(hours=hours)), chat.clock)


def tuesday_rows(chat: Chat) -> list[str]:
    return [r.key for r in scheduled(chat, "sched:tuesday_morning:")]


def test_down_at_0830_up_at_1000_the_reminder_is_sent_once(chat: Chat) -> None:
    seed(chat)
    runner = runner_at(chat, at(TUESDAY, 10))
    first = {r.job: r.status for r in runner.catch_up()}
    assert first["tuesday_morning"] == "done" and first["overdue_ladder"] == "done"
    assert first["tuesday_preview"] == "missed"  # Monday 16:00 is 18 hours ago
    assert runner.catch_up() == []  # a second start finds everything recorded
    chat.clock.at = at(TUESDAY, 10, 5)
    assert runner.catch_up_job("tuesday_morning") == []
    assert tuesday_rows(chat) == ["sched:tuesday_morning:2020-12-01:cid-district"]
    [run] = runs(chat, "tuesday_morning")
    assert (run.trigger, run.status, run.messages, run.due_at) == ("catch_up", "done", 1, at(TUESDAY, 8, 30))


@pytest.mark.parametrize(
    ("up", "grace_hours", "status", "sent"),
    [
        ((14, 30), 6, "done", 1),  # 6 hours after 08:30: the edge of the grace time, still sent
        ((15, 0), 7, "done", 1),
        ((15, 0), 6, "missed", 0),  # 6.5 hours late: beyond a 6-hour grace
        ((15, 0), 1, "missed", 0),
    ],
)
def test_up_in_the_afternoon_within_or_beyond_the_grace_time(
    chat: Chat, up: tuple[int, int], grace_hours: float, status: str, sent: int
) -> None:
    seed(chat)
    chat.clock.at = at(TUESDAY, *up)
    [result] = with_grace(chat, grace_hours).catch_up_job("tuesday_morning", trigger="catch_up")
    assert result.status == status
    assert len(tuesday_rows(chat)) == sent
    [run] = runs(chat, "tuesday_morning")
    assert (run.status, run.due_at) == (status, at(TUESDAY, 8, 30))
    assert with_grace(chat, grace_hours).catch_up_job("tuesday_morning") == []  # decided once


def test_a_week_down_records_every_missed_occurrence_and_runs_only_the_latest(chat: Chat) -> None:
    seed(chat)
    runner = runner_at(chat, at(date(2020, 11, 30), 9, 1))
    assert [r.status for r in runner.catch_up_job("overdue_ladder")] == ["done"]
    chat.clock.at = at(date(2020, 12, 7), 9, 30)  # back a week later
    results = runner.catch_up_job("overdue_ladder")
    assert [(r.due_at.date(), r.status) for r in results if r.due_at] == [
        (date(2020, 12, 1), "missed"),
        (date(2020, 12, 2), "missed"),
        (date(2020, 12, 3), "missed"),
        (date(2020, 12, 4), "missed"),
        (date(2020, 12, 7), "done"),
    ]


def test_a_failing_job_is_logged_recorded_and_does_not_stop_the_others(
    chat: Chat, caplog: pytest.LogCaptureFixture
) -> None:
    seed(chat)

    def broken(ctx):  # type: ignore[no-untyped-def]
        ctx.to_group("sched:broken", "cid-district", "x", "half-written")
        raise RuntimeError("boom 13812345678")

    healthy = runner_at(chat, at(TUESDAY, 9, 5))
    jobs = [replace(j, body=broken) if j.name == "tuesday_morning" else j for j in healthy.jobs]
    runner = JobRunner(healthy.engine, healthy.calendar, healthy.config, chat.clock, jobs)
    with caplog.at_level(logging.ERROR, logger="schedules.runs"):
        results = {r.job: r.status for r in runner.catch_up()}
    assert results["tuesday_morning"] == "failed" and results["overdue_ladder"] == "done"
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.getMessage().startswith("job tuesday_morning (2020-12-01T08:30:00+08:00) failed")
    assert record.exc_info and record.exc_info[0] is RuntimeError
    [run] = runs(chat, "tuesday_morning")
    assert (run.status, run.error) == ("failed", "RuntimeError")  # the type only, like inbox.reason
    assert scheduled(chat, "sched:broken") == []  # its half-written messages were rolled back
    assert runner.catch_up_job("tuesday_morning") == []  # a recorded failure is not retried in a loop


@pytest.fixture
def two_apps(chat: Chat) -> Iterator[list[App]]:
    """A second process's app on the same database (its own engine and clock)."""
    other = build(Settings(database_url=chat.app.settings.database_url), FrozenClock(chat.clock.at))
    yield [chat.app, other]
    other.engine.dispose()


async def test_two_scheduler_processes_one_database_each_digest_sent_once(chat: Chat, two_apps: list[App]) -> None:
    seed(chat)
    monday = at(date(2020, 12, 7), 9, 5)
    clocks = [FrozenClock(monday), FrozenClock(monday)]
    handles = [
        await runner_module.start(app.job_runner(c), lock=leader_lock(app.settings.database_url), poll_seconds=3600)
        for app, c in zip(two_apps, clocks, strict=True)
    ]
    try:
        assert [h.is_leader for h in handles] == [True, False]
        digests = [r.key for r in scheduled(chat, "sched:weekly_digest:")]
        assert len(digests) == len(set(digests)) == 5

        # The leader dies; the follower takes over and catches up: nothing is sent again.
        await handles[0].stop()
        assert await handles[1].try_lead() is True
        assert [r.key for r in scheduled(chat, "sched:weekly_digest:")] == digests
        # Its timer firing for this occurrence also finds it done.
        await handles[1]._fire("weekly_digest")
        assert [r.key for r in scheduled(chat, "sched:weekly_digest:")] == digests
        assert [r.status for r in runs(chat, "weekly_digest")] == ["done"]
    finally:
        for h in handles:
            await h.stop()


def test_without_a_lock_two_runners_racing_still_send_each_digest_once(chat: Chat, two_apps: list[App]) -> None:
    seed(chat)
    monday = at(date(2020, 12, 7), 9)
    runners = [app.job_runner(FrozenClock(monday)) for app in two_apps]
    barrier = threading.Barrier(2)
    statuses: list[str] = []

    def race(r: JobRunner) -> None:
        barrier.wait()
        statuses.append(r.run("weekly_digest", monday).status)

    threads = [threading.Thread(target=race, args=(r,)) for r in runners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == ["done", "skipped"]
    digests = [r.key for r in scheduled(chat, "sched:weekly_digest:")]
    assert len(digests) == len(set(digests)) == 5


HOLD_LOCK = """
import sys
from pathlib import Path
from schedules.leader import FileLock
lock = FileLock(Path(sys.argv[1]))
print("leading" if lock.acquire() else "following", flush=True)
sys.stdin.read()  # hold it until killed
"""


def test_another_process_takes_over_when_the_leader_process_dies(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite.scheduler.lock"
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "leading"
        mine = FileLock(path)
        assert mine.acquire() is False
        child.kill()
        child.wait()
        assert mine.acquire() is True  # the operating system released the dead leader's lock
        assert path.read_text().strip().isdigit()  # our pid, for whoever looks
        mine.release()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_the_lock_file_sits_beside_the_sqlite_database(tmp_path: Path) -> None:
    lock = leader_lock(f"sqlite:///{tmp_path}/data/liandong.db")
    assert isinstance(lock, FileLock) and lock.path == tmp_path / "data" / "liandong.db.scheduler.lock"
    assert lock.acquire() and not FileLock(lock.path).acquire()
    lock.release()
    assert FileLock(lock.path).acquire()


async def test_start_sets_up_apscheduler_in_shanghai_with_the_calendar_triggers(chat: Chat, tmp_path: Path) -> None:
    seed(chat)
    chat.clock.at = at(TUESDAY, 8, 30)
    lock_path = tmp_path / "t.db.scheduler.lock"
    wakes: list[str] = []
    handle = await runner_module.start(
        chat.app.job_runner(chat.clock), lock=FileLock(lock_path), on_written=lambda: wakes.append("wake")
    )
    try:
        assert handle.is_leader
        assert tuesday_rows(chat) == ["sched:tuesday_morning:2020-12-01:cid-district"]  # the catch-up on start
        assert wakes == ["wake"]  # the sender is told once the rows are committed
        scheduler = handle._scheduler
        assert scheduler is not None and str(scheduler.timezone) == "Asia/Shanghai"
        jobs = {j.id: j for j in scheduler.get_jobs()}
        assert set(jobs) == {"tuesday_preview", "tuesday_morning", "tuesday_evening", "overdue_ladder", "weekly_digest"}
        morning = jobs["tuesday_morning"]
        assert str(morning.trigger) == "timing[08:30 working_tuesdays]"
        assert morning.trigger.get_next_fire_time(None, at(date(2020, 10, 5), 12)) == at(date(2020, 10, 13), 8, 30)
        assert morning.misfire_grace_time == 6 * 3600 and morning.coalesce
        # The timer's path is the catch-up's: firing now again changes nothing.
        await handle._fire("tuesday_morning")
        assert len(tuesday_rows(chat)) == 1 and wakes == ["wake"]
    finally:
        await handle.stop()
    assert not handle.is_leader and FileLock(lock_path).acquire()  # released on stop
    assert [r.status for r in runs(chat, "tuesday_morning")] == ["done"]


def test_start_uses_the_org_files_schedule_section(tmp_path: Path) -> None:
    org = tmp_path / "org.yaml"
    org.write_text(
        SAMPLE.read_text(encoding="utf-8") + '\nschedule:\n  tuesday_morning: "08:00"\n  grace_hours: 2\n',
        encoding="utf-8",
    )
    app = build(Settings(database_url=database_url(tmp_path, "s"), org_file=org), FrozenClock(at(TUESDAY)))
    r = app.job_runner()
    assert r.config.grace == timedelta(hours=2)
    assert r.timing(job("tuesday_morning")).next_at_or_after(at(TUESDAY, 7)) == at(TUESDAY, 8, 0)
    app.engine.dispose()
