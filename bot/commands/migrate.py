"""`liandong migrate`: bring the database to the newest schema and write the org file into it."""

from __future__ import annotations

import argparse

from bot.app import build
from bot.config import Settings


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    return sub.add_parser("migrate", help="把数据库升级到最新结构并写入组织架构")


def run(args: argparse.Namespace, settings: Settings) -> int:
    build(settings).engine.dispose()
    print("数据库已是最新结构。")
    return 0
