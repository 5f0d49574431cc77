"""`liandong remind --now [--force] [--job NAME]`: the reminders due today, on demand: the
Tuesday preview on Mondays, the Tuesday reminder on working Tuesdays, the overdue ladder on
working days. Same keys as the scheduled runs, so nothing is sent twice unless --force."""

from __future__ import annotations

import argparse

from bot.app import App, open_app
from bot.commands.schedule import add_at, print_results
from bot.config import Settings
from models.clock import FrozenClock, SystemClock, local, short_date
from schedules.jobs import JOB_NAMES, JOBS


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("remind", help="立即发送今天的提醒 (默认只预览)")
    p.add_argument("--job", choices=JOB_NAMES, help="只运行这个任务 (默认: 今天该运行的提醒)")
    p.add_argument("--now", action="store_true", help="立即发送 (写入发送队列)")
    p.add_argument("--force", action="store_true", help="已发送过的提醒也再发一次")
    add_at(p, "假定现在是此时刻 (默认: 现在)")
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    # A connection that writes even for the preview: the runs are done and rolled back.
    with open_app(settings, writes=True) as app:
        return _remind(args, app)


def _remind(args: argparse.Namespace, app: App) -> int:
    clock = FrozenClock(args.at) if args.at else SystemClock()
    runner = app.job_runner(clock)
    today = local(clock.now()).date()
    names = [args.job] if args.job else [j.name for j in JOBS if j.reminder and j.rule(today, runner.calendar)]
    if not names:
        print(f"{short_date(today)}不是提醒日(节假日或休息日),没有提醒。")
        return 0
    results = [runner.run(name, None, trigger="manual", force=args.force, dry_run=not args.now) for name in names]
    return print_results(results, args.now)
