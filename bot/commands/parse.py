"""`liandong parse [--org FILE] [--sender-unit UNIT] [--today YYYY-MM-DD] "TEXT"`: what the bot
understands of a post, as one JSON object; `--jsonl` reads `{"text": …, "sender_unit": …}`
lines from stdin and writes one object per line, in order. Reads no database."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from typing import Any

from bot.config import Settings
from bot.org import load_org
from handlers.intake import CategoryFileError, CategoryModel, IntakeParser
from handlers.intake.charmodel import shipped
from models.clock import SystemClock, local
from models.directory import Directory


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("parse", help="解析一条上报文字,打印识别结果 (JSON)")
    p.add_argument("text", nargs="?", help="上报文字 (用 --jsonl 时不写)")
    p.add_argument("--sender-unit", help="发送人所在单位,名称或「乡镇/村」(默认: 区)")
    p.add_argument("--today", type=date.fromisoformat, help="消息日期 YYYY-MM-DD (默认: 今天, 北京时间)")
    p.add_argument("--jsonl", action="store_true", help='从标准输入逐行读 {"text": …, "sender_unit": …}')
    p.add_argument("--categories", help="类别关键词文件 (默认: 内置,或 LIANDONG_CATEGORY_FILE)")
    return p


def _line(parser: IntakeParser, directory: Directory, raw: str, number: int, today: date) -> dict[str, Any]:
    try:
        item = json.loads(raw)
    except json.JSONDecodeError:
        return {"error": f"第{number}行不是 JSON"}
    if not isinstance(item, dict) or not isinstance(item.get("text"), str):
        return {"error": f'第{number}行缺少 "text"'}
    unit = directory.find(item.get("sender_unit") if isinstance(item.get("sender_unit"), str) else None)
    if unit is None:
        return {"error": f"第{number}行: 未知或重名的单位"}
    try:
        day = date.fromisoformat(item["today"]) if isinstance(item.get("today"), str) else today
    except ValueError:
        return {"error": f"第{number}行: today 应为 YYYY-MM-DD"}
    return parser.parse(item["text"], unit, day).as_json()


def run(args: argparse.Namespace, settings: Settings) -> int:
    directory = load_org(settings.org_file).directory
    category_file = args.categories or settings.category_file
    try:
        # With the shipped character model, as the bot reads the file: what is tried is what it does.
        categories = CategoryModel.load(category_file, shipped()) if category_file else None
    except CategoryFileError as e:
        print(f"类别文件有误: {e}", file=sys.stderr)
        return 2
    parser = IntakeParser(directory, categories)
    today = args.today or local(SystemClock().now()).date()
    if args.jsonl:
        for number, raw in enumerate(sys.stdin, 1):
            if raw.strip():
                print(json.dumps(_line(parser, directory, raw, number, today), ensure_ascii=False))
        return 0
    if args.text is None:
        print('请给出要解析的文字,如: liandong parse "上洋村村民反映宅基地审批8个月未批复"', file=sys.stderr)
        return 2
    unit = directory.find(args.sender_unit)
    if unit is None:
        print(f"未知或重名的单位: {args.sender_unit}", file=sys.stderr)
        return 2
    print(json.dumps(parser.parse(args.text, unit, today).as_json(), ensure_ascii=False))
    return 0
