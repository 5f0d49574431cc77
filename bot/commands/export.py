"""`liandong export --format xlsx|csv [--from D] [--to D] [--unit U] -o FILE`: the ledger (台账)
of the issues registered in the period, in the unit's subtree, exactly as /api/export.* serves it."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from sqlmodel import Session

from bot.app import open_app
from bot.config import Settings
from bot.web.export import ledger_rows, to_csv, to_xlsx
from bot.web.params import IssueQuery
from bot.web.views import Names
from models.clock import SystemClock, local


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("export", help="导出台账 (.xlsx 或 .csv)")
    p.add_argument("--format", choices=("xlsx", "csv"), help="默认按 -o 文件的扩展名")
    p.add_argument("--from", dest="start", type=date.fromisoformat, help="登记日期起 (含), 如 2020-01-01")
    p.add_argument("--to", dest="end", type=date.fromisoformat, help="登记日期止 (含)")
    p.add_argument("--unit", help="单位名称、别名或「乡镇/村」(默认: 全区)")
    p.add_argument("-o", "--output", required=True, type=Path, help="输出文件")
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    fmt = args.format or args.output.suffix.lstrip(".").lower()
    if fmt not in ("xlsx", "csv"):
        print("请用 --format xlsx 或 --format csv (或 -o 文件名以 .xlsx/.csv 结尾)", file=sys.stderr)
        return 2
    if args.start and args.end and args.start > args.end:
        print("--from 不能晚于 --to", file=sys.stderr)
        return 2
    with open_app(settings) as app:
        directory = app.dispatcher.directory
        unit = directory.find(args.unit)
        if unit is None:
            print(f"未知或重名的单位: {args.unit} (重名的村请写「乡镇/村」)", file=sys.stderr)
            return 2
        today = local(SystemClock().now()).date()
        with Session(app.engine) as session:
            rows = ledger_rows(
                session, unit, IssueQuery(start=args.start, end=args.end), Names.everyone(session, directory), today
            )
    args.output.write_bytes(to_xlsx(rows) if fmt == "xlsx" else to_csv(rows))
    print(f"已导出 {len(rows)} 条 ({unit.name}) 到 {args.output}")
    return 0
