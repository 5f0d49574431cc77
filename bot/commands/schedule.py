"""`liandong schedule [--at 2020-10-05T12:00]`: each job and its next run (Asia/Shanghai),
holidays and 调休 taken into account; also the helpers `digest` and `remind` share."""

from __future__ import annotations

import argparse
from datetime import datetime

from sqlmodel import Session, col, select

from bot.app import open_app
from bot.config import Settings
from models.clock import SHANGHAI, FrozenClock, SystemClock, local
from models.tables import JobRun
from schedules.runs import RunResult


def parse_at(value: str) -> datetime:
    """An ISO moment; without an offset it is Shanghai wall time."""
    try:
        at = datetime.fromisoformat(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"应为 ISO 时间,如 2020-10-05T12:00,收到 {value!r}") from e
    return at.replace(tzinfo=SHANGHAI) if at.tzinfo is None else at


def add_at(p: argparse.ArgumentParser, help_text: str) -> None:
    p.add_argument("--at", type=parse_at, metavar="ISO", help=help_text)


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("schedule", help="列出定时任务及下次运行时间")
    add_at(p, "以此时刻为准 (默认: 现在),如 2020-10-05T12:00")
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    at = args.at or SystemClock().now()
    with open_app(settings) as app, Session(app.engine) as session:
        runner = app.job_runner(FrozenClock(at))
        hours = runner.config.grace.total_seconds() / 3600
        print(f"以 {local(at).isoformat()} 为准(Asia/Shanghai);停机错过的运行在 {hours:g} 小时内补发,否则记为错过。")
        for spec, nxt in runner.next_runs(at):
            last = session.exec(
                select(JobRun)
                .where(JobRun.job == spec.name, col(JobRun.due_at).is_not(None))
                .order_by(col(JobRun.due_at).desc())
            ).first()
            line = f"{spec.name:<16} {local(nxt).isoformat() if nxt else '—':<26} {spec.title}"
            if last and last.due_at:
                line += f" · 上次 {local(last.due_at).isoformat()} {last.status}"
            print(line)
    return 0


def print_results(results: list[RunResult], sending: bool) -> int:
    """What was written (or would be), then one line saying which; 1 when a job failed."""
    sent = [s for r in results for s in r.sent]
    for s in sent:
        target = f"单聊 {s.target[5:]}" if s.target.startswith("user:") else f"群 {s.target}"
        print(f"→ {target}" + (f" · @{' @'.join(s.at)}" if s.at else ""))
        print(s.text)
        print()
    if any(r.status == "failed" for r in results):
        print("任务出错,详见日志。")
        return 1
    if not sent:
        print("没有要发送的内容(本期已发送过,或没有需要提醒的事项;重发请加 --force)。")
    elif sending:
        print(f"已写入发送队列 {len(sent)} 条,由运行中的 liandong run 发出。")
    else:
        print("以上为预览,没有发送;加 --now 发送。")
    return 0
