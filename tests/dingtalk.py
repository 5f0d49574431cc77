"""Fixtures shared by the transport tests: the emulator on a loopback port and a running bot;
and, for the synchronous chat tests, a recording DingTalk that the real outbox sender delivers to."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.app import App, build
from bot.config import Settings
from bot.runtime import Runtime, RuntimeOptions
from bot.sandbox.emulator import ROBOT_CODE, Emulator, Faults, Sent
from bot.transport.dingtalk_api import Credentials, DingTalkApi
from bot.transport.sender import CLAIM_LIMIT, OutboxSender
from models.clock import Clock
from models.tables import InboxMessage, Issue, OutboxMessage
from tests.databases import database_url

T = TypeVar("T")


@dataclass
class Rig:
    emulator: Emulator
    server: TestServer
    app: App
    runtime: Runtime

    def payload(self, text: str, staff_id: str = "v001", cid: str = "cid-shangyang", **kw):  # type: ignore[no-untyped-def]
        return self.emulator.user_message(cid, staff_id, staff_id, text, **kw)

    async def settle(self) -> None:
        """Everything delivered so far is processed and its replies sent or scheduled."""
        await self.runtime.pipeline.drain()  # type: ignore[union-attr]
        await self.runtime.sender.idle()  # type: ignore[union-attr]

    def count(self, model: type) -> int:
        with Session(self.app.engine) as s:
            return len(s.exec(select(model)).all())

    def issues(self) -> list[Issue]:
        with Session(self.app.engine) as s:
            return list(s.exec(select(Issue)))

    def inbox(self) -> list[InboxMessage]:
        with Session(self.app.engine) as s:
            return list(s.exec(select(InboxMessage)))

    def outbox(self) -> list[OutboxMessage]:
        with Session(self.app.engine) as s:
            return list(s.exec(select(OutboxMessage).order_by(OutboxMessage.id)))


def settings(tmp_path: Path, org: Path | None = None) -> Settings:
    kw = {"org_file": org} if org else {}
    return Settings(
        database_url=database_url(tmp_path, "bot"),
        photos_dir=tmp_path / "photos",
        client_id="sandbox-id",
        client_secret="sandbox-secret",
        robot_code="dingsandboxrobot",
        **kw,
    )


async def start_runtime(app: App, server: TestServer, clock: Clock | None = None, **options: float) -> Runtime:
    runtime = Runtime(
        app, RuntimeOptions(endpoint=str(server.make_url("")).rstrip("/"), backoff_cap_s=0.2, **options), clock
    )
    await runtime.start()
    return runtime


@pytest.fixture
async def emulator_server() -> AsyncIterator[tuple[Emulator, TestServer]]:
    emulator = Emulator()
    server = TestServer(emulator.app(), host="127.0.0.1")
    await server.start_server()
    emulator.base_url = str(server.make_url("")).rstrip("/")
    yield emulator, server
    emulator.close()
    await server.close()


@pytest.fixture
def emulator(emulator_server: tuple[Emulator, TestServer]) -> Emulator:
    """The emulator alone, for tests that only need its address (bot subprocesses)."""
    return emulator_server[0]


@pytest.fixture
async def rig(tmp_path: Path, emulator_server: tuple[Emulator, TestServer]) -> AsyncIterator[Rig]:
    emulator, server = emulator_server
    app = build(settings(tmp_path))
    runtime = await start_runtime(app, server)
    await emulator.wait_for(lambda: len(emulator.connections) == 1)
    yield Rig(emulator, server, app, runtime)
    await runtime.stop()
    app.engine.dispose()


class RecordingDingTalk:
    """The emulator on a loopback port, served by an event loop in a thread of its own, so that
    synchronous tests (and async ones, whose loop is busy) can run the real OutboxSender against
    it and read back what DingTalk received (aiogram's MockedSession, Bolt's mock web API
    server). One per test process: starting it costs a thread and a socket, a delivery about a
    millisecond."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="recording-dingtalk", daemon=True)
        self._thread.start()
        self.emulator = Emulator()
        self.server = TestServer(self.emulator.app(), host="127.0.0.1")
        self.run(self.server.start_server())
        self.emulator.base_url = str(self.server.make_url("")).rstrip("/")
        self.http = self.run(_client())

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def sender(self, engine: Engine, clock: Clock) -> OutboxSender:
        """The bot's outbox sender, its database side run in place (no custom robots: a robot's
        webhook would point outside the emulator)."""
        creds = Credentials(self.emulator.client_id, self.emulator.client_secret, ROBOT_CODE)
        api = DingTalkApi(self.http, self.emulator.base_url, creds)
        return OutboxSender(engine, api, _in_place, clock)

    def deliver(self, sender: OutboxSender) -> list[Sent]:
        """Send whatever is due now (a pass claims up to CLAIM_LIMIT rows; a row that failed waits
        for its retry time); what DingTalk received meanwhile."""
        start = len(self.emulator.sent)
        self.run(_send_due(sender))
        return self.emulator.sent[start:]

    def reset(self) -> None:
        self.emulator.faults = Faults()
        self.emulator.notices.forget()  # a work notification's once-a-day rule is per test

    def close(self) -> None:
        self.run(self.http.close())
        self.run(self.server.close())
        self.emulator.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


_recording: RecordingDingTalk | None = None


def recording_dingtalk() -> RecordingDingTalk:
    """The process's recording DingTalk, started on first use."""
    global _recording
    if _recording is None:
        _recording = RecordingDingTalk()
    return _recording


@pytest.fixture(scope="session", autouse=True)
def _close_recording_dingtalk() -> Iterator[None]:
    yield
    global _recording
    if _recording is not None:
        _recording.close()
        _recording = None


async def _client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession()


async def _send_due(sender: OutboxSender) -> None:
    while await sender.send_due() >= CLAIM_LIMIT:
        pass


async def _in_place(fn: Any, *args: Any) -> Any:
    return fn(*args)
