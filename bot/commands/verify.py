"""`liandong verify`: walk every issue's hash chain and rebuild its kept counts from its events;
exit 1 when anything is wrong."""

from __future__ import annotations

import argparse

from sqlmodel import Session

from bot.app import open_app
from bot.config import Settings
from models.verify import verify_chains


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    return sub.add_parser("verify", help="校验每个问题的事件哈希链,并按事件重算统计数据")


def run(args: argparse.Namespace, settings: Settings) -> int:
    with open_app(settings) as app, Session(app.engine) as session:
        problems = verify_chains(session)
    for p in problems:
        print(p)
    print("事件链完整,统计数据与事件一致。" if not problems else f"发现 {len(problems)} 处问题。")
    return 1 if problems else 0
