"""/healthz: 200 when this process's receiver is up and the shared database is reachable and
not stuck; 503 naming the check that fails (stream down, database unreachable, a stale
outbox, jobs no process runs). No token needed, and nothing about cases in it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import App, build, open_app
from bot.config import Settings
from bot.runtime import Runtime, RuntimeOptions
from bot.sandbox.emulator import Emulator
from bot.web import create_web_app
from models.clock import SHANGHAI, Clock, FrozenClock
from tests.conftest import Chat
from tests.dingtalk import settings

# A Sunday: every job's latest occurrence is past the grace time, so a catch-up records each as
# missed and writes no messages.
SUNDAY = datetime(2020, 11, 15, 12, 0, tzinfo=SHANGHAI)
PHONE = "13912345678"


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Poll a condition seen from outside (an HTTP answer) until it holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def serving(
    app: App, emulator: Emulator, clock: Clock | None = None, **options: Any
) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    """`liandong run` with its web app on a loopback port, connected to the emulator: the web
    app's address and a client session. The app's engine is disposed at the end."""
    runtime = Runtime(
        app, RuntimeOptions(endpoint=emulator.base_url, web_listen=("127.0.0.1", 0), scheduler=False, **options), clock
    )
    await runtime.start()
    try:
        url = runtime.web_url
        assert url is not None
        await emulator.wait_for(lambda: len(emulator.connections) == 1)
        async with aiohttp.ClientSession() as http:
            yield url, http
    finally:
        await runtime.stop()
        app.engine.dispose()


async def healthz(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any]]:
    async with http.get(f"{url}/healthz") as r:
        assert r.content_type == "application/json"
        return r.status, await r.json()


async def test_healthz_follows_this_processs_stream_connection(
    tmp_path: Path, emulator_server: tuple[Emulator, TestServer]
) -> None:
    emulator, _ = emulator_server
    clock = FrozenClock(SUNDAY)
    app = build(settings(tmp_path), clock)
    app.job_runner(clock).catch_up()  # what the leader does at start: every occurrence recorded
    async with serving(app, emulator, clock, backoff_cap_s=0.2) as (url, http):
        status, body = await healthz(http, url)
        assert status == 200, body
        assert body["status"] == "ok" and body["failing"] == []
        assert body["checks"]["receiver"] == {"ok": True, "mode": "stream", "up": True}
        assert body["checks"]["database"]["ok"] is True
        assert body["checks"]["outbox"]["due"] == 0 and body["checks"]["jobs"]["late"] == []
        assert body["checks"]["jobs"]["last_run"]["status"] == "missed"

        # DingTalk's gateway stops answering and the socket is cut: this process cannot
        # take messages, whatever the database says.
        emulator.faults.fail_next["/v1.0/gateway/connections/open"] = 10**6
        await emulator.drop_all()

        async def down() -> bool:
            return (await healthz(http, url))[0] == 503

        await until(down)
        status, body = await healthz(http, url)
        assert body["status"] == "fail" and body["failing"] == ["receiver"]
        assert body["checks"]["receiver"] == {"ok": False, "mode": "stream", "up": False}

        emulator.faults.fail_next.clear()  # the gateway is back: reconnected, healthy again

        async def up() -> bool:
            return (await healthz(http, url))[0] == 200

        await until(up)
        assert len(emulator.connections) == 1


async def test_http_callback_mode_is_healthy_while_its_site_listens(tmp_path: Path) -> None:
    clock = FrozenClock(SUNDAY)
    app = build(settings(tmp_path), clock)
    app.job_runner(clock).catch_up()
    options = RuntimeOptions(
        endpoint="http://127.0.0.1:9",  # never called: no message arrives in this test
        http_listen=("127.0.0.1", 0),
        web_listen=("127.0.0.1", 0),
        scheduler=False,
    )
    runtime = Runtime(app, options, clock)
    await runtime.start()
    try:
        assert runtime.web_url is not None
        async with aiohttp.ClientSession() as http:
            status, body = await healthz(http, runtime.web_url)
        assert status == 200 and body["checks"]["receiver"] == {"ok": True, "mode": "http_callback", "up": True}
    finally:
        await runtime.stop()
        app.engine.dispose()


async def test_a_reply_due_too_long_and_jobs_nobody_runs_fail_the_check(tmp_path: Path) -> None:
    clock = FrozenClock(SUNDAY)
    app = build(Settings(database_url=f"sqlite:///{tmp_path}/t.db", photos_dir=tmp_path / "photos"), clock)
    chat = Chat(app, clock)
    async with TestClient(TestServer(create_web_app(app, clock), host="127.0.0.1")) as client:
        r = await client.get("/healthz")
        body = await r.json()
        # No process has run the scheduler on this database: Friday's ladder was never recorded.
        assert r.status == 503 and body["failing"] == ["jobs"]
        assert "overdue_ladder" in body["checks"]["jobs"]["late"] and body["checks"]["jobs"]["last_run"] is None
        app.job_runner(clock).catch_up()
        assert (await client.get("/healthz")).status == 200

        with chat.batched():  # stored, processed and answered; the reply not sent yet
            chat.say("v001", f"上报 村民反映路灯坏了 联系电话{PHONE}", at=SUNDAY)
            r = await client.get("/healthz")
            assert r.status == 200 and (await r.json())["checks"]["outbox"]["due"] == 1
            clock.advance(timedelta(minutes=6))  # and no sender took it since
            r = await client.get("/healthz")
            text = await r.text()
            body = json.loads(text)
            assert r.status == 503 and body["failing"] == ["outbox"]
            assert body["checks"]["outbox"]["pending"] == 1 and body["checks"]["outbox"]["oldest_due_s"] == 360.0
            # About the backlog, never about the case.
            assert PHONE not in text and "路灯" not in text and "上洋村" not in text
        assert chat.received and "已登记" in chat.received[-1].text  # the sender caught up
        assert (await client.get("/healthz")).status == 200
    app.engine.dispose()


async def test_an_unreachable_database_fails_the_check_without_saying_where_it_is(tmp_path: Path) -> None:
    postgres = pytest.importorskip("tests.postgres")
    with postgres.fresh_database() as url:
        clock = FrozenClock(SUNDAY)
        app: App = build(Settings(database_url=url, photos_dir=tmp_path / "photos"), clock)
        app.job_runner(clock).catch_up()
        async with TestClient(TestServer(create_web_app(app, clock), host="127.0.0.1")) as client:
            assert (await client.get("/healthz")).status == 200
            name = url.rsplit("/", 1)[1]
            app.engine.dispose()
            with postgres.admin() as conn:  # the database goes away under the running web app
                conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            r = await client.get("/healthz")
            text = await r.text()
            body = json.loads(text)
            assert r.status == 503 and body["failing"] == ["database"]
            assert body["checks"]["database"] == {"ok": False, "error": "OperationalError"}
            assert set(body["checks"]) == {"database"}  # nothing else could be read
            assert name not in text and "postgres" not in text
            r = await client.get("/metrics")
            assert r.status == 200 and 'liandong_database_up{error="OperationalError"} 0.0' in await r.text()


async def test_a_database_file_deleted_under_the_bot_answers_503_with_the_state_and_since_when(
    tmp_path: Path, emulator_server: tuple[Emulator, TestServer]
) -> None:
    emulator, _ = emulator_server
    emulator.faults.redeliver_after_s = 1.0  # the unacknowledged frame comes again, as DingTalk's does
    clock = FrozenClock(SUNDAY)
    prepared = build(settings(tmp_path), clock)
    prepared.job_runner(clock).catch_up()
    prepared.engine.dispose()
    app = open_app(settings(tmp_path), clock, writes=True)  # as `liandong run` opens it: never created
    if app.engine.dialect.name != "sqlite":
        app.engine.dispose()
        pytest.skip("a SQLite file deleted under the bot")
    db = Path(app.engine.url.database or "")
    async with serving(app, emulator, clock) as (url, http):
        status, body = await healthz(http, url)
        assert status == 200 and body["checks"]["writes"] == {"ok": True, "state": "ok"}
        with sqlite3.connect(db) as src, sqlite3.connect(tmp_path / "copy.db") as dst:
            src.backup(dst)
        for side in ("", "-wal", "-shm"):
            Path(f"{db}{side}").unlink(missing_ok=True)
        await emulator.deliver(emulator.user_message("cid-shangyang", "v001", "张三", "上报 上洋村井盖缺失"))

        async def down() -> bool:
            return (await healthz(http, url))[0] == 503

        await until(down)
        status, body = await healthz(http, url)
        writes = body["checks"]["writes"]
        assert "writes" in body["failing"] and writes["ok"] is False and writes["state"] == "missing"
        assert datetime.fromisoformat(writes["since"]) <= clock.now() and writes["for_s"] >= 0
        assert body["checks"]["database"] == {"ok": False, "error": "OperationalError"}  # mode=ro: not made
        assert not db.exists()
        (tmp_path / "copy.db").replace(db)

        async def up() -> bool:
            return (await healthz(http, url))[0] == 200

        await until(up)
        assert (await healthz(http, url))[1]["checks"]["writes"] == {"ok": True, "state": "ok"}
        await emulator.wait_for(lambda: any("已登记" in s.text for s in emulator.sent))
