"""HTTP callback mode: a valid signature goes through the inbox; a forged, stale or missing one
gets 401 and stores nothing."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import App, build
from bot.sandbox.emulator import Emulator
from bot.transport.http_callback import callback_app, callback_sign
from bot.transport.pipeline import Pipeline
from models.tables import InboxMessage, Issue
from tests.dingtalk import settings

SECRET = "sandbox-secret"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[TestClient, App, Pipeline]]:
    app = build(settings(tmp_path))
    pipeline = Pipeline(app.dispatcher)
    await pipeline.start()
    client = TestClient(TestServer(callback_app(pipeline, SECRET), host="127.0.0.1"))
    await client.start_server()
    yield client, app, pipeline
    await client.close()
    await pipeline.stop()
    app.engine.dispose()


def body() -> str:
    payload = Emulator().user_message("cid-shangyang", "v001", "张三", "上报 上洋村道路塌方,影响通行")
    return json.dumps(payload, ensure_ascii=False)


def headers(ts: int, secret: str = SECRET) -> dict[str, str]:
    return {"timestamp": str(ts), "sign": callback_sign(secret, str(ts)), "Content-Type": "application/json"}


def count(app: App, model: type) -> int:
    from sqlmodel import Session, select

    with Session(app.engine) as s:
        return len(s.exec(select(model)).all())


async def test_valid_signature_is_stored_and_processed(client) -> None:  # type: ignore[no-untyped-def]
    http, app, pipeline = client
    resp = await http.post("/dingtalk/callback", data=body().encode(), headers=headers(int(time.time() * 1000)))
    assert resp.status == 200
    await pipeline.drain()
    assert count(app, InboxMessage) == 1 and count(app, Issue) == 1


@pytest.mark.parametrize(
    "make_headers",
    [
        lambda now: headers(now, secret="wrong-secret"),  # forged
        lambda now: headers(now - 3601_000),  # stale: more than an hour old
        lambda now: headers(now + 3601_000),  # from the future
        lambda now: {"Content-Type": "application/json"},  # missing
        lambda now: {"timestamp": "abc", "sign": "x"},  # garbage
        lambda now: {**headers(now), "timestamp": str(now + 1)},  # sign of another moment
    ],
    ids=["forged", "stale", "future", "missing", "garbage", "replayed-sign"],
)
async def test_bad_signatures_get_401_and_store_nothing(client, make_headers) -> None:  # type: ignore[no-untyped-def]
    http, app, pipeline = client
    resp = await http.post("/dingtalk/callback", data=body().encode(), headers=make_headers(int(time.time() * 1000)))
    assert resp.status == 401
    await pipeline.drain()
    assert count(app, InboxMessage) == 0


@pytest.mark.parametrize("raw", [b"not json", b"[1,2]", b'{"msgId": "x"}', b"\xff\xfe"])
async def test_malformed_bodies_get_400_and_the_server_lives_on(client, raw: bytes) -> None:  # type: ignore[no-untyped-def]
    http, app, pipeline = client
    resp = await http.post("/dingtalk/callback", data=raw, headers=headers(int(time.time() * 1000)))
    assert resp.status == 400
    ok = await http.post("/dingtalk/callback", data=body().encode(), headers=headers(int(time.time() * 1000)))
    assert ok.status == 200
    await pipeline.drain()
    assert count(app, InboxMessage) == 1


def _poisoned(field: str, value: object) -> bytes:
    payload = json.loads(body())
    payload[field] = value
    return json.dumps(payload).encode()  # ensure_ascii: a lone surrogate travels as \ud800


async def test_one_poison_message_does_not_fail_its_neighbours(client) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    http, app, pipeline = client
    now = int(time.time() * 1000)
    good = [
        Emulator().user_message("cid-shangyang", "v001", "张三", f"上报 上洋村第{i}处道路塌方,影响通行")
        for i in range(20)
    ]
    bodies = [json.dumps(g, ensure_ascii=False).encode() for g in good]
    bad = [
        _poisoned("msgId", "\ud800"),
        _poisoned("senderStaffId", "v0\udfff01"),
        _poisoned("conversationId", "c\ud800"),
    ]
    resps = await asyncio.gather(
        *(http.post("/dingtalk/callback", data=b, headers=headers(now)) for b in [*bodies[:10], *bad, *bodies[10:]])
    )
    assert sorted(r.status for r in resps) == [200] * 20 + [400] * 3
    await pipeline.drain()
    assert count(app, InboxMessage) == 20 and count(app, Issue) == 20


@pytest.mark.parametrize(
    "raw",
    [
        _poisoned("createAt", 1e400),  # JSON's 1e400 is infinity
        _poisoned("createAt", True),
        _poisoned("createAt", 1.5),
        _poisoned("msgId", "a\nINFO forged log line"),
        ("[" * 100_000 + "]" * 100_000).encode(),  # deeper than the parser goes
        b'{"msgId": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
    ids=["createAt-1e400", "createAt-true", "createAt-float", "msgId-newline", "nested", "nested-field"],
)
async def test_hostile_bodies_are_refused_cleanly(client, raw: bytes, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    http, app, pipeline = client
    resp = await http.post("/dingtalk/callback", data=raw, headers=headers(int(time.time() * 1000)))
    assert resp.status == 400
    assert not any(r.exc_info for r in caplog.records) and "forged log line" not in caplog.text
    await pipeline.drain()
    assert count(app, InboxMessage) == 0
