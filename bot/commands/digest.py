"""`liandong digest [--group CID] --now [--force]`: the weekly digest on demand, about the last
complete week, under the same keys as the scheduled one (so it is not sent twice) unless --force."""

from __future__ import annotations

import argparse
import sys

from sqlmodel import Session

from bot.app import App, open_app
from bot.commands.schedule import add_at, print_results
from bot.config import Settings
from models import queries as q
from models.clock import FrozenClock, SystemClock


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("digest", help="立即生成每周通报 (默认只预览)")
    p.add_argument("--group", metavar="CID", help="只发这个群 (默认: 所有已绑定的群)")
    p.add_argument("--now", action="store_true", help="立即发送 (写入发送队列)")
    p.add_argument("--force", action="store_true", help="本期已发送过也再发一次")
    add_at(p, "假定现在是此时刻 (默认: 现在)")
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    # A connection that writes even for the preview: the run is done and rolled back.
    with open_app(settings, writes=True) as app:
        return _digest(args, app)


def _digest(args: argparse.Namespace, app: App) -> int:
    if args.group:
        with Session(app.engine) as session:
            if q.binding(session, args.group) is None:
                print(f"群「{args.group}」未绑定单位,请先在群里「绑定 单位名」或写入组织架构文件。", file=sys.stderr)
                return 2
    clock = FrozenClock(args.at) if args.at else SystemClock()
    runner = app.job_runner(clock)
    groups = frozenset([args.group]) if args.group else None
    result = runner.run("weekly_digest", None, trigger="manual", force=args.force, groups=groups, dry_run=not args.now)
    return print_results([result], args.now)
