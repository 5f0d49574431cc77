"""`liandong run [--http HOST:PORT]`: the bot, in stream mode (default) or HTTP callback mode,
until SIGTERM/SIGINT; then a clean stop (in-flight messages finished, outbox flushed, exit 0).
The dashboard and JSON API listen on `--web HOST:PORT` (127.0.0.1:8081) unless `--no-web`.
It never migrates: `liandong migrate` is the deploy step (the schema and the org rows), and `run`
on a database not at this code's revision says so in one line and exits 3 (bot.cli), so that
several processes started side by side never race on DDL.
`--claim-s SECONDS` shortens how long a message or reply taken by a process that died
stays with it before the others take it up (default: 60 s for messages, 30 s for replies)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from bot.app import open_app
from bot.config import Settings
from bot.runtime import Runtime, RuntimeOptions

log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("run", help="运行机器人 (默认 Stream 模式)")
    p.add_argument(
        "--http", metavar="HOST:PORT", type=parse_listen, help="改用 HTTP 回调模式,监听此地址 (路由 /dingtalk/callback)"
    )
    p.add_argument(
        "--web",
        metavar="HOST:PORT",
        type=parse_listen,
        default="127.0.0.1:8081",
        help="看板与 JSON API 的监听地址 (默认 127.0.0.1:8081)",
    )
    p.add_argument("--no-web", action="store_true", help="不启动看板与 JSON API")
    p.add_argument(
        "--claim-s",
        type=float,
        default=None,
        metavar="SECONDS",
        help="进程退出后其未处理完的消息与回复多久后由其他进程接手 (默认消息 60 秒、回复 30 秒)",
    )
    return p


def parse_listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"应为 HOST:PORT (端口 0–65535),收到 {value!r}")
    return host, int(port)


def run(args: argparse.Namespace, settings: Settings) -> int:
    logging.getLogger().setLevel(logging.INFO)
    if not (settings.client_id and settings.client_secret):
        print("请设置 DINGTALK_CLIENT_ID 和 DINGTALK_CLIENT_SECRET (本地试用请用 make run)")
        return 2
    options = RuntimeOptions(
        claim_s=args.claim_s,
        endpoint=settings.openapi_endpoint,
        http_listen=args.http,
        web_listen=None if args.no_web else args.web,
    )
    # A supervisor may stop us while the database is still being opened: remember it and stop
    # cleanly once the loop runs, rather than die by the signal's default action (exit -15).
    early: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: early.append(signum))
    app = open_app(settings, writes=True)  # SchemaNotReady unless `liandong migrate` ran
    return asyncio.run(serve(Runtime(app, options), early))


async def serve(runtime: Runtime, early: list[int] | None = None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if early:  # a signal that came before the loop's own handlers were in place
        stop.set()
    try:
        await runtime.start()
    except BaseException:
        await runtime.stop()  # what had started (pipeline, sender) stops cleanly before we say why
        raise
    log.info("liandong running")
    runtime.failed.add_done_callback(lambda _: stop.set())
    await stop.wait()
    log.info("stopping: finishing in-flight messages and flushing the outbox")
    # From here on a clean stop always completes: a further TERM or INT (a supervisor's repeat,
    # or one arriving after the loop has put back the default action) must not cut it short;
    # a supervisor that cannot wait sends KILL, and the inbox and outbox survive that too.
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)
        signal.signal(sig, signal.SIG_IGN)
    await runtime.stop()
    if runtime.failed.done():
        raise runtime.failed.result()
    return 0
