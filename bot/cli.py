"""`liandong` command line. Each subcommand lives in bot/commands/ and is listed here."""

from __future__ import annotations

import argparse
import logging
import sys
from types import ModuleType

from bot.commands import (
    console,
    digest,
    export,
    migrate,
    outbox,
    parse,
    remind,
    report,
    run,
    sandbox,
    schedule,
    token,
    verify,
)
from bot.config import Settings
from bot.logs import setup_logging
from bot.org import OrgError

# Each module has `add_parser(subparsers)` and `run(args, settings) -> int`.
COMMANDS: list[ModuleType] = [
    run,
    sandbox,
    console,
    report,
    verify,
    migrate,
    schedule,
    digest,
    remind,
    parse,
    export,
    token,
    outbox,
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="liandong", description="两难问题三级联动钉钉机器人")
    parser.add_argument("--org", help="组织架构文件 (默认: LIANDONG_ORG_FILE 或内置示例)")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.add_parser(sub).set_defaults(run=module.run)
    args = parser.parse_args(argv)
    setup_logging(logging.WARNING)
    try:
        return int(args.run(args, Settings.from_env(args.org)))
    except OrgError as e:
        print(f"组织架构文件有误: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
