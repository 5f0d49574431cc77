"""`liandong console`: chat with the bot in the terminal as a person of the org file."""

from __future__ import annotations

import argparse

from bot.app import open_app
from bot.config import Settings


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    return sub.add_parser("console", help="在终端里以某个人的身份和机器人对话 (本地试用)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.console import run_console

    with open_app(settings, writes=True) as app:  # the people and groups come from the database
        return run_console(app)
