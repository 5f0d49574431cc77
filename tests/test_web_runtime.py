"""The dashboard and API run inside `liandong run` (Runtime with web_listen), next to the
bot, and stop with it; `--web` is checked like `--http`; the sandbox helper's token works."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from bot.app import build
from bot.cli import main as cli
from bot.runtime import Runtime, RuntimeOptions
from bot.sandbox.emulator import Emulator
from bot.web import create_web_app, sandbox_web_app
from bot.web.context import CONTEXT
from models.tables import Issue
from tests.databases import sqlite_only
from tests.dingtalk import settings
from tests.web_seed import NOW
from tests.web_support import org_with_tokens, seeded_env


async def test_the_runtime_serves_the_dashboard_and_stops_it(
    tmp_path: Path, emulator_server: tuple[Emulator, TestServer]
) -> None:
    emulator, _ = emulator_server
    org, tokens = org_with_tokens(tmp_path)
    app = build(settings(tmp_path, org))
    options = RuntimeOptions(endpoint=emulator.base_url, web_listen=("127.0.0.1", 0), scheduler=False)
    runtime = Runtime(app, options)
    await runtime.start()
    url = runtime.web_url
    assert url is not None and url.startswith("http://127.0.0.1:")
    try:
        async with aiohttp.ClientSession() as http:
            r = await http.get(f"{url}/api/stats", headers={"Authorization": f"Bearer {tokens['hangbu']}"})
            assert r.status == 200 and (await r.json())["unit"]["name"] == "航埠镇"
            assert (await http.get(f"{url}/api/stats")).status == 401
    finally:
        await runtime.stop()
        app.engine.dispose()
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get(f"{url}/api/openapi.json")


async def test_a_taken_dashboard_port_does_not_keep_the_bot_down(
    tmp_path: Path, emulator_server: tuple[Emulator, TestServer], caplog: pytest.LogCaptureFixture
) -> None:
    emulator, _ = emulator_server
    app = build(settings(tmp_path))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        runtime = Runtime(
            app, RuntimeOptions(endpoint=emulator.base_url, web_listen=("127.0.0.1", port), scheduler=False)
        )
        await runtime.start()
        try:
            await emulator.wait_for(lambda: len(emulator.connections) == 1)  # the bot is up all the same
            assert runtime.web_url is None and f"cannot listen on 127.0.0.1:{port}" in caplog.text
        finally:
            await runtime.stop()
            app.engine.dispose()


def test_run_checks_its_web_address(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli(["run", "--web", "8081"])
    assert e.value.code == 2 and "HOST:PORT" in capsys.readouterr().err


async def test_the_sandbox_helper_mints_a_district_token(tmp_path: Path) -> None:
    app = build(settings(tmp_path))
    web_app, token = sandbox_web_app(app)
    async with TestClient(TestServer(web_app, host="127.0.0.1")) as client:
        r = await client.get("/api/stats", headers={"Authorization": f"Bearer {token}"})
        assert r.status == 200 and (await r.json())["unit"]["kind"] == "district"
        r = await client.get(f"/dashboard?token={token}", allow_redirects=False)
        assert r.status == 303 and r.headers["Location"] == "/dashboard"
    app.engine.dispose()


@sqlite_only("SQLite's one write lock")
def test_web_reads_never_hold_the_bots_write_lock(tmp_path: Path) -> None:
    env = seeded_env(tmp_path)
    engine = create_web_app(env.app)[CONTEXT].engine
    assert engine is not env.app.engine
    database = env.database_url.removeprefix("sqlite:///")
    with Session(engine) as s:
        before = len(s.exec(select(Issue)).all())  # a read transaction is now open
        writer = sqlite3.connect(database, timeout=0.2, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")  # "database is locked" here if the read held the lock
        writer.execute("ROLLBACK")
        writer.close()
        assert env.chat.say("v001", "上报 村口路灯坏了一个多月没人修", at=NOW).outcome == "ok"
        assert len(s.exec(select(Issue)).all()) == before  # its snapshot
        with pytest.raises(OperationalError):  # and it cannot write
            s.execute(text("DELETE FROM issues"))
    with Session(engine) as s:
        assert len(s.exec(select(Issue)).all()) == before + 1
    engine.dispose()
    env.app.engine.dispose()
