"""`liandong report --year 2020 | --from D --to D [--unit U]`: the §1 paragraph on stdout."""

from __future__ import annotations

import argparse
import sys
from datetime import date

from sqlmodel import Session

from bot.app import open_app
from bot.config import Settings
from models.clock import SystemClock
from models.counts import Period, count_levels


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("report", help='打印"两难"问题统计段落')
    p.add_argument("--year", type=int)
    p.add_argument("--from", dest="start", type=date.fromisoformat)
    p.add_argument("--to", dest="end", type=date.fromisoformat)
    p.add_argument("--unit", help="单位名称 (默认: 全区)")
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.year:
        period = Period(date(args.year, 1, 1), date(args.year, 12, 31), f"{args.year}年")
    elif args.start and args.end and args.start <= args.end:
        period = Period(args.start, args.end, f"{args.start}至{args.end}")
    else:
        print("请给出 --year 2020,或 --from 2020-01-01 --to 2020-06-30", file=sys.stderr)
        return 2
    with open_app(settings) as app:
        unit = app.dispatcher.directory.find(args.unit)
        if unit is None:
            print(f"未知或重名的单位: {args.unit}", file=sys.stderr)
            return 2
        with Session(app.engine) as session:
            print(count_levels(session, period, unit, SystemClock().now()).paragraph())
    return 0
