"""`liandong` command line. Each subcommand lives in bot/commands/ and is listed here.

Only `migrate`, `run` and `sandbox` prepare the database (migrate it, write the org file's rows);
every other command opens it as it is (bot.app.open_app) and says so in one line when it has no
schema yet."""

from __future__ import annotations

import argparse
import logging
import sys
from types import ModuleType

import sqlalchemy.exc

from bot.commands import (
    console,
    digest,
    export,
    migrate,
    org,
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
from bot.runtime import StartupError
from handlers.intake import CategoryFileError
from models.db import SchemaNotReady
from models.masking import mask

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
    org,
]


ORG_HELP = "组织架构文件 (默认: LIANDONG_ORG_FILE 或内置示例);子命令前后都可以写"


def accept_org_anywhere(parser: argparse.ArgumentParser) -> None:
    """`--org FILE` after the subcommand too (and after a sub-subcommand: `token new`). SUPPRESS
    leaves a --org given before the subcommand in place when none is given after it."""
    if not any("--org" in action.option_strings for action in parser._actions):
        parser.add_argument("--org", default=argparse.SUPPRESS, help=ORG_HELP)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                accept_org_anywhere(child)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="liandong", description="两难问题三级联动钉钉机器人")
    parser.add_argument("--org", help=ORG_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        p = module.add_parser(sub)
        p.set_defaults(run=module.run)
        accept_org_anywhere(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    setup_logging(logging.WARNING)
    try:
        return int(args.run(args, Settings.from_env(args.org)))
    except OrgError as e:
        print(f"组织架构文件有误: {e}", file=sys.stderr)
        return 2
    except CategoryFileError as e:
        print(f"类别文件有误: {e}", file=sys.stderr)
        return 2
    except SchemaNotReady as e:
        print(e, file=sys.stderr)
        return 3
    except StartupError as e:
        print(e, file=sys.stderr)
        return 4
    except sqlalchemy.exc.ArgumentError:
        # The URL itself may hold a password: name only what was wrong with it.
        print(
            "DATABASE_URL 无法识别: 应形如 sqlite:///data/liandong.db 或 postgresql+psycopg://用户@主机/库名",
            file=sys.stderr,
        )
        return 4
    except sqlalchemy.exc.DBAPIError as e:
        print(f"无法打开数据库: {database_reason(e)}", file=sys.stderr)
        return 4
    except OSError as e:  # a data or photo folder that cannot be made or written
        print(f"启动失败: {e.strerror or e}" + (f" ({e.filename})" if e.filename else ""), file=sys.stderr)
        return 4


URL_FORMS = "sqlite:///data/liandong.db 或 postgresql+psycopg://用户@主机/库名"


def database_reason(e: sqlalchemy.exc.DBAPIError) -> str:
    """The driver's first line (\"file is not a database\", \"connection refused\"), masked."""
    first = str(e.orig).strip().splitlines()[0] if str(e.orig).strip() else type(e.orig).__name__
    return mask(first)[:200]


if __name__ == "__main__":
    sys.exit(main())
