"""Shared by the dashboard/API tests: an org file with API tokens (only their hashes in it),
a seeded app, and the web app served on a loopback port from a thread (for clients that are
not asyncio: schemathesis' requests, Playwright's sync API)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from bot.app import App, build
from bot.config import Settings
from bot.org import SAMPLE
from bot.web import create_web_app
from bot.web.auth import token_hash
from bot.web.export import HEADERS
from models.clock import FrozenClock
from tests.conftest import Chat
from tests.databases import database_url
from tests.web_seed import NOW, Seeded, seed

UNITS = {"district": "柯城区", "huayuan": "花园街道", "hangbu": "航埠镇", "shangyang": "花园街道/上洋村"}


def org_with_tokens(directory: Path) -> tuple[Path, dict[str, str]]:
    """The sample org plus one token per entry of UNITS; returns the file and the raw tokens."""
    tokens = {key: f"ld_test_{key}_token" for key in UNITS}
    lines = ["", "api_tokens:"]
    for key, unit in UNITS.items():
        entry = {"sha256": token_hash(tokens[key]), "unit": unit, "note": f"测试 {key}"}
        lines.append("  - {" + ", ".join(f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in entry.items()) + "}")
    path = directory / "org.yaml"
    path.write_text(SAMPLE.read_text(encoding="utf-8") + "\n".join(lines) + "\n", encoding="utf-8")
    return path, tokens


@dataclass
class WebEnv:
    app: App
    chat: Chat
    seeded: Seeded
    tokens: dict[str, str]
    database_url: str
    org: Path

    def auth(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[key]}"}


def seeded_env(directory: Path) -> WebEnv:
    org, tokens = org_with_tokens(directory)
    url = database_url(directory, "web")
    clock = FrozenClock(NOW)
    app = build(Settings(database_url=url, org_file=org, photos_dir=directory / "photos"), clock)
    chat = Chat(app, clock)
    return WebEnv(app, chat, seed(chat), tokens, url, org)


async def page(client: TestClient, env: WebEnv, path: str, key: str = "district", status: int = 200) -> str:
    r = await client.get(path, headers=env.auth(key))
    assert r.status == status, (path, r.status)
    assert r.content_type == "text/html"
    return await r.text()


async def download(client: TestClient, env: WebEnv, path: str, key: str = "district") -> tuple[bytes, Any]:
    r = await client.get(path, headers=env.auth(key))
    assert r.status == 200, await r.text()
    return await r.read(), r.headers


def sheet(body: bytes) -> Worksheet:
    ws = load_workbook(io.BytesIO(body)).active
    assert ws is not None
    return ws


def records(ws: Worksheet) -> list[dict[str, Any]]:
    """The ledger's rows by header, checking the header row is the export's."""
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0] == HEADERS
    return [dict(zip(HEADERS, r, strict=True)) for r in rows[1:]]


def csv_records(body: bytes) -> list[dict[str, str]]:
    """The .csv ledger's rows by header, checking its BOM and header row."""
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body[3:].decode("utf-8"), newline="")))
    assert tuple(rows[0]) == HEADERS
    return [dict(zip(HEADERS, r, strict=True)) for r in rows[1:]]


@contextmanager
def served(web_app: web.Application) -> Iterator[str]:
    """Serve on 127.0.0.1 (a free port) from a thread with its own event loop; yield the base URL."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    started: dict[str, object] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        runner = web.AppRunner(web_app)
        try:
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
            started["port"] = runner.addresses[0][1]
        except BaseException as e:  # reported to the waiting test instead of hanging it
            started["error"] = e
            return
        finally:
            ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=run, name="web-test-server", daemon=True)
    thread.start()
    assert ready.wait(30), "the web server did not start"
    if "error" in started:
        raise RuntimeError("the web server failed to start") from started["error"]  # type: ignore[arg-type]
    try:
        yield f"http://127.0.0.1:{started['port']}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)


@pytest.fixture(scope="module")
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebEnv]:
    """A seeded database and org file shared by one test module."""
    e = seeded_env(tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1]))
    yield e
    e.app.engine.dispose()


@pytest.fixture
async def client(env: WebEnv) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_web_app(env.app), host="127.0.0.1")) as c:
        yield c
