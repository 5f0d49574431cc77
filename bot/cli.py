"""`liandong` command line: console | report | verify | migrate (more commands join as they land)."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import date

from sqlmodel import Session

from bot.config import Settings
from bot.logs import setup_logging
from bot.org import OrgError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="liandong", description="两难问题三级联动钉钉机器人")
    parser.add_argument("--org", help="组织架构文件 (默认: LIANDONG_ORG_FILE 或内置示例)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("console", help="在终端里以某个人的身份和机器人对话 (本地试用)")
    sub.add_parser("sandbox", help="本地试用 (目前即终端对话)")
    sub.add_parser("migrate", help="把数据库升级到最新结构并写入组织架构")
    sub.add_parser("verify", help="校验每个问题的事件哈希链")
    report = sub.add_parser("report", help='打印"两难"问题统计段落')
    report.add_argument("--year", type=int)
    report.add_argument("--from", dest="start", type=date.fromisoformat)
    report.add_argument("--to", dest="end", type=date.fromisoformat)
    report.add_argument("--unit", help="单位名称 (默认: 全区)")
    args = parser.parse_args(argv)
    setup_logging(logging.WARNING)

    settings = Settings.from_env(args.org)
    try:
        from bot.app import build

        app = build(settings)
    except OrgError as e:
        print(f"组织架构文件有误: {e}", file=sys.stderr)
        return 2
    if args.command in ("console", "sandbox"):
        from bot.console import run_console

        return run_console(app)
    if args.command == "migrate":
        print("数据库已是最新结构。")
        return 0
    if args.command == "verify":
        return _verify(app.engine)
    return _report(app, args)


def _verify(engine) -> int:  # type: ignore[no-untyped-def]
    from models.verify import verify_chains

    with Session(engine) as session:
        problems = verify_chains(session)
    for p in problems:
        print(p)
    print("事件链完整。" if not problems else f"发现 {len(problems)} 处问题。")
    return 1 if problems else 0


def _report(app, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    from models.clock import SystemClock, local
    from models.counts import Period, count_levels
    from models.directory import AmbiguousUnit

    if args.year:
        period = Period(date(args.year, 1, 1), date(args.year, 12, 31), f"{args.year}年")
    elif args.start and args.end and args.start <= args.end:
        period = Period(args.start, args.end, f"{args.start}至{args.end}")
    else:
        print("请给出 --year 2020,或 --from 2020-01-01 --to 2020-06-30", file=sys.stderr)
        return 2
    directory = app.dispatcher.directory
    try:
        unit = directory.resolve(args.unit) if args.unit else directory.district
    except AmbiguousUnit:
        unit = None
    if unit is None:
        print(f"未知或重名的单位: {args.unit}", file=sys.stderr)
        return 2
    now = local(SystemClock().now())
    with Session(app.engine) as session:
        print(count_levels(session, period, unit, now).paragraph())
    return 0


if __name__ == "__main__":
    sys.exit(main())
