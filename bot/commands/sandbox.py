"""`liandong sandbox [--port 8080] [--dashboard-port 8081] [--database FILE] [--keep]`: the local
DingTalk emulator, the real bot in stream mode against it, the browser page and the dashboard,
until Ctrl-C or SIGTERM.

The sandbox has its own SQLite file (./data/sandbox.db), never DATABASE_URL: its clock jumps write
future-dated events, which in `liandong run`'s database would skew report, digest and 统计. It
starts empty unless --keep, because the emulator's conversations live in memory: after a restart
the page would show none while the numbering went on from the last #N."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from aiohttp import web
from sqlalchemy import delete, inspect, table, text
from sqlmodel import SQLModel

from bot.app import App, build
from bot.commands.org import report
from bot.config import Settings
from bot.contacts.api import ContactError
from bot.contacts.sync import fetch, sync
from bot.org import sync_org
from bot.runtime import Runtime, RuntimeOptions
from bot.sandbox.contacts import seed_from_org
from bot.sandbox.emulator import CORP_ID, ROBOT_CODE, Emulator
from bot.sandbox.notices import AGENT_ID
from bot.sandbox.web import ClockMoved, Ran, Reset, SandboxPage, Sync
from bot.web import sandbox_web_app
from models.clock import Clock, ShiftedClock
from models.db import unit_of_work
from models.masking import mask
from schedules.runs import LOOKBACK

SANDBOX_DB = Path("./data/sandbox.db")
HOST = "127.0.0.1"  # the sandbox has no authentication: never listen beyond this machine
CLIENT_ID, CLIENT_SECRET = "sandbox-id", "sandbox-secret"
DASHBOARD_PORT = 8081  # fixed, so the address written on a slide or a note stays right
# Kept by 重置沙盒: the org file's units, whose ids the running bot and dashboard hold.
KEPT_TABLES = frozenset({"alembic_version", "units"})


class PortInUse(OSError):
    pass


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("sandbox", help="本地沙盒:模拟钉钉 + 机器人 + 浏览器页面 (无需钉钉账号)")
    p.add_argument("--port", type=int, default=8080, help="页面端口 (默认 8080)")
    p.add_argument(
        "--dashboard-port", type=int, default=DASHBOARD_PORT, help=f"看板端口 (默认 {DASHBOARD_PORT},被占用时另选)"
    )
    p.add_argument("--database", type=Path, default=SANDBOX_DB, help=f"沙盒自己的数据库文件 (默认 {SANDBOX_DB})")
    p.add_argument("--keep", action="store_true", help="保留上次沙盒的数据 (默认每次启动清空)")
    return p


def sandbox_database(settings: Settings, path: Path, keep: bool = False) -> Settings:
    """The sandbox's own SQLite file and photo folder beside it, emptied unless `keep`."""
    if not keep:
        for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            stale.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    return dataclasses.replace(
        settings, database_url=f"sqlite:///{path}", photos_dir=path.parent / f"{path.stem}-photos"
    )


def sandbox_settings(settings: Settings) -> Settings:
    """The emulator's own credentials, whatever DINGTALK_* the environment carries: the
    sandbox must never talk to the real DingTalk."""
    return dataclasses.replace(settings, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, robot_code=ROBOT_CODE)


@dataclass
class Sandbox:
    emulator: Emulator
    runtime: Runtime
    page_url: str
    dashboard_url: str
    dashboard_note: str = ""  # said at start when the dashboard could not have its usual port


def empty_database(app: App) -> None:
    """Every row the bot wrote, in one transaction, then the org file's people and groups again:
    as a freshly created sandbox file, so the next 上报 is #1 (SQLite reuses rowids from 1 once
    a table is empty; PostgreSQL, which the tests may use, restarts its sequences)."""
    present = set(inspect(app.engine).get_table_names()) - KEPT_TABLES
    known = [t for t in reversed(SQLModel.metadata.sorted_tables) if t.name in present]  # children first
    unknown = present - {t.name for t in known}
    with unit_of_work(app.engine) as session:
        if app.engine.dialect.name == "postgresql":  # its sequences go on after a DELETE
            names = ", ".join(f'"{n}"' for n in sorted(present))
            session.execute(text(f"TRUNCATE TABLE {names} RESTART IDENTITY"))
        else:
            for name in sorted(unknown):  # a table no model maps: nothing of ours refers to it
                session.execute(delete(table(name)))
            for known_table in known:
                session.execute(delete(known_table))
        app.dispatcher.directory = sync_org(session, app.org)
    shutil.rmtree(app.settings.photos_dir, ignore_errors=True)


def contact_syncer(app: App, runtime: Runtime, emulator: Emulator, clock: Clock) -> Sync:
    """同步通讯录: `liandong org sync` with the emulator as both of DingTalk's hosts, applied on
    the database thread the bot's own writes use."""
    settings = dataclasses.replace(app.settings, openapi_endpoint=emulator.base_url, oapi_endpoint=emulator.base_url)

    async def sync_now() -> list[str]:
        try:
            snap = await fetch(settings)
        except ContactError as e:
            return [f"读取钉钉通讯录失败: {mask(str(e))}"]
        run = runtime.pipeline.run_db if runtime.pipeline is not None else asyncio.to_thread
        changes = await run(sync, app.engine, app.org, snap, clock)
        return report(app.engine, changes, snap, applied=True)

    return sync_now


def database_resetter(app: App, runtime: Runtime) -> Reset:
    """重置沙盒 on the database thread the bot's own writes use, so it never runs beside one."""

    async def reset() -> None:
        if runtime.pipeline is not None:
            await runtime.pipeline.run_db(empty_database, app)
        else:
            await asyncio.to_thread(empty_database, app)

    return reset


async def _listen(app: web.Application, port: int, shutdown_timeout: float = 5.0) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, shutdown_timeout=shutdown_timeout, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, port)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    return runner, runner.addresses[0][1]


def clock_stepper(runtime: Runtime, clock: ShiftedClock) -> ClockMoved:
    """What the page calls after a clock move: step the clock through every job occurrence
    between the two moments, each run at its own time (a jump past Monday 16:00 runs the preview
    then, rather than recording it missed), and say what ran."""

    async def catch_up(before: datetime, after: datetime) -> list[Ran]:
        scheduler = runtime.scheduler
        if scheduler is None:
            return []
        runner = scheduler.runner
        titles = {spec.name: spec.title for spec in runner.jobs}
        # A jump spans a week at most; 回到现在 may leap years (past dates typed in the sandbox):
        # that is no jump to step through, only a catch-up as after a restart.
        span = after - before
        steps = sorted(
            {due for spec in runner.jobs for due in runner.timing(spec).between(before, after)}
            if timedelta(0) < span <= LOOKBACK
            else set()
        )
        results = []
        for due in steps:
            clock.jump_to(due)
            results += await scheduler.catch_up()
        if steps:  # back where the page put it (回到现在 moves back and steps through nothing)
            clock.jump_to(after)
        results += await scheduler.catch_up()
        return [(r.due_at, titles[r.job], len(r.sent)) for r in results if r.status == "done" and r.due_at]

    return catch_up


@asynccontextmanager
async def running(
    app: App, port: int, clock: ShiftedClock | None = None, dashboard_port: int = 0
) -> AsyncIterator[Sandbox]:
    """Emulator on a free port, the bot connected to it, the page on `port` (0: any free one),
    the dashboard on `dashboard_port` (any free one when taken, said in `dashboard_note`).
    `clock` is the one `app` was built with: the page's clock control moves it, for the bot,
    its scheduler and the emulator alike."""
    clock = clock or ShiftedClock()
    emulator = Emulator(app.settings.client_id or CLIENT_ID, app.settings.client_secret or CLIENT_SECRET, clock=clock)
    emulator_runner, emulator_port = await _listen(emulator.app(), 0)
    emulator.base_url = f"http://{HOST}:{emulator_port}"
    seed_from_org(emulator.contacts, app.org)  # what 同步通讯录 reads
    # The emulator stands in for the oapi host too, and gives the sandbox's app an AgentId, so
    # that work notifications are seen in the page's one-to-one view.
    options = RuntimeOptions(endpoint=emulator.base_url, oapi_endpoint=emulator.base_url, agent_id=AGENT_ID)
    runtime = Runtime(app, options, clock)

    catch_up = clock_stepper(runtime, clock)

    page_runner: web.AppRunner | None = None
    dashboard_runner: web.AppRunner | None = None
    try:
        await runtime.start()
        # Open the page only once the bot listens (a post would wait otherwise), and never stop the
        # stream client mid-connect: a socket it opens after stop() is never closed.
        await emulator.wait_for(lambda: bool(emulator.connections), timeout=30)
        # The dashboard with a district token that lives only in this process (nothing is written
        # to the org file), linked from the page's header.
        dashboard_app, token = sandbox_web_app(app, clock, emulator.base_url, CORP_ID)
        note = ""
        try:
            dashboard_runner, listening = await _listen(dashboard_app, dashboard_port)
        except OSError as e:
            dashboard_runner, listening = await _listen(dashboard_app, 0)
            note = f"看板端口 {dashboard_port} 已被占用 ({e.strerror or e}),改用 {listening};可用 --dashboard-port 指定"
        dashboard = f"http://{HOST}:{listening}/dashboard?token={token}"
        try:
            page = SandboxPage(
                emulator,
                app.org,
                dashboard_url=dashboard,
                clock=clock,
                on_clock_moved=catch_up,
                on_reset=database_resetter(app, runtime),
                on_sync=contact_syncer(app, runtime, emulator, clock),
            )
            page_runner, page_port = await _listen(page.app(), port)
        except OSError as e:
            raise PortInUse(e.errno, f"{HOST}:{port}: {e.strerror or e}") from e
        yield Sandbox(emulator, runtime, f"http://{HOST}:{page_port}", dashboard, note)
    finally:
        if page_runner:
            await page_runner.cleanup()
        if dashboard_runner:
            await dashboard_runner.cleanup()
        await runtime.stop()
        emulator.close()
        await emulator_runner.cleanup()


def run(args: argparse.Namespace, settings: Settings) -> int:
    logging.getLogger().setLevel(logging.INFO)
    clock = ShiftedClock()  # real time until the page's clock control moves it
    app = build(sandbox_database(sandbox_settings(settings), args.database, args.keep), clock)
    try:
        return asyncio.run(serve(app, args.port, clock, args.dashboard_port))
    finally:
        app.engine.dispose()


async def serve(app: App, port: int, clock: ShiftedClock | None = None, dashboard_port: int = DASHBOARD_PORT) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with running(app, port, clock, dashboard_port) as sandbox:
            print(f"沙盒已启动:在浏览器打开 {sandbox.page_url}  (Ctrl-C 停止)", flush=True)
            print(f"Sandbox running: open {sandbox.page_url}  (Ctrl-C to stop)", flush=True)
            if sandbox.dashboard_note:
                print(sandbox.dashboard_note, flush=True)
            print(f"看板 / dashboard: {sandbox.dashboard_url}", flush=True)
            board = sandbox.dashboard_url.split("?", 1)[0]
            print(
                f"钉钉登录 / DingTalk login: {sandbox.emulator.base_url}/sandbox/login?userid=t102&to={board}",
                flush=True,
            )
            await stop.wait()
            print("正在停止…", flush=True)
    except PortInUse as e:
        print(f"无法启动页面 ({e.strerror});可用 --port 换一个端口", file=sys.stderr)
        return 1
    return 0
