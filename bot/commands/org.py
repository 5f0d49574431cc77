"""`liandong org diff` (what a sync with DingTalk's contacts would change, read-only) and
`liandong org sync` (apply it, in one transaction). See bot.contacts."""

from __future__ import annotations

import argparse
import asyncio
import sys

from sqlalchemy import Engine
from sqlmodel import Session

from bot.app import open_app
from bot.config import Settings
from bot.contacts.api import ContactError, Snapshot
from bot.contacts.plan import Change
from bot.contacts.sync import diff, fetch, sync
from models.directory import Directory
from models.masking import mask


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("org", help="按钉钉通讯录核对或同步人员")
    actions = p.add_subparsers(dest="action", required=True)
    actions.add_parser("diff", help="只列出同步会做的改动, 不写入")
    actions.add_parser("sync", help="按钉钉通讯录同步人员 (一次事务)")
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    # The database first: one without the schema is refused before DingTalk is asked anything.
    with open_app(settings, writes=args.action == "sync") as app:
        try:
            snap = asyncio.run(fetch(settings))
        except ContactError as e:
            print(f"读取钉钉通讯录失败: {mask(str(e))}", file=sys.stderr)
            return 1
        apply_or_show = sync if args.action == "sync" else diff
        changes = apply_or_show(app.engine, app.org, snap)
        out = report(app.engine, changes, snap, applied=args.action == "sync")
    print("\n".join(out))
    return 0


def report(engine: Engine, changes: list[Change], snap: Snapshot, applied: bool) -> list[str]:
    """A line per change and the total (also the sandbox's 同步通讯录 answer)."""
    with Session(engine) as session:
        directory = Directory.load(session)
    lines = [change.line(directory) for change in changes]
    done = "已同步" if applied else "同步将做"
    total = f"{done} {len(changes)} 项改动(钉钉通讯录 {len(snap.users)} 人)。"
    return [*lines, total if changes else "与钉钉通讯录一致,无需改动。"]
