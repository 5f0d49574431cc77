"""Fixtures shared by the transport tests: the emulator on a loopback port and a running bot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from sqlmodel import Session, select

from bot.app import App, build
from bot.config import Settings
from bot.runtime import Runtime, RuntimeOptions
from bot.sandbox.emulator import Emulator
from models.clock import Clock
from models.tables import InboxMessage, Issue, OutboxMessage


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
        database_url=f"sqlite:///{tmp_path}/bot.db",
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
async def rig(tmp_path: Path, emulator_server: tuple[Emulator, TestServer]) -> AsyncIterator[Rig]:
    emulator, server = emulator_server
    app = build(settings(tmp_path))
    runtime = await start_runtime(app, server)
    await emulator.wait_for(lambda: len(emulator.connections) == 1)
    yield Rig(emulator, server, app, runtime)
    await runtime.stop()
    app.engine.dispose()
