"""`liandong outbox [--failed] [--limit N]`: what the bot has to send, has sent, or gave up on
(a permanent failure is kept and shown here, never dropped)."""

from __future__ import annotations

import argparse

from sqlmodel import Session, col, select

from bot.app import open_app
from bot.config import Settings
from models.clock import local
from models.masking import mask
from models.tables import OutboxMessage


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("outbox", help="查看待发送、已发送或发送失败的消息")
    p.add_argument("--failed", action="store_true", help="只看发送失败的消息")
    p.add_argument("--pending", action="store_true", help="只看待发送的消息")
    p.add_argument("--limit", type=int, default=50)
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    query = select(OutboxMessage).order_by(col(OutboxMessage.id).desc()).limit(max(1, args.limit))
    if args.failed:
        query = query.where(OutboxMessage.status == "failed")
    elif args.pending:
        query = query.where(OutboxMessage.status == "pending")
    with open_app(settings) as app, Session(app.engine) as session:
        rows = list(session.exec(query))
    for row in rows:
        to = row.conversation_id or ",".join(row.user_ids)
        when = local(row.created_at).strftime("%m-%d %H:%M")
        first_line = mask(row.text.splitlines()[0] if row.text else "")[:40]
        error = f" · {row.last_error}" if row.last_error else ""
        print(f"{row.id:>6} {when} {row.status:<7} {row.kind:<5} → {to} · 尝试{row.attempts}次{error} · {first_line}")
    if not rows:
        print("没有符合条件的消息。")
    return 1 if args.failed and rows else 0
