"""The sandbox's unread counts, 重置沙盒 and its fixed dashboard address, against the emulator and
the real bot (the page's JSON endpoints; the browser side is in test_sandbox_ux_browser)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlmodel import Session, select

from bot.app import build
from bot.commands.sandbox import Sandbox, running
from models.tables import Issue, IssueEvent, OutboxMessage, Person
from tests.dingtalk import settings

SUBMISSION = "@两难助手 上报 上洋村村民李某反映宅基地审批8个月未批复,涉及历史遗留,联系电话13812345678"


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    app = build(settings(tmp_path))
    try:
        async with running(app, 0) as s:
            yield s
    finally:
        app.engine.dispose()


async def call(method: str, url: str, **kw: Any) -> tuple[int, Any]:
    # unsafe: keep the dashboard's cookie although the host is an IP address (127.0.0.1)
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
        http.request(method, url, **kw) as r,
    ):
        return r.status, await (r.json() if r.content_type == "application/json" else r.text())


async def post(s: Sandbox, text: str, staff: str = "v001", cid: str = "cid-shangyang") -> None:
    status, body = await call(
        "POST", f"{s.page_url}/api/messages", json={"conversation": cid, "staff_id": staff, "text": text}
    )
    assert status == 200, body


async def bot_said(s: Sandbox, cid: str, start: str) -> None:
    def said() -> bool:
        return any(e.get("from") == "bot" and str(e.get("text", "")).startswith(start) for e in s.emulator.history[cid])

    await s.emulator.wait_for(said, timeout=15)


async def test_unread_counts_follow_every_conversation_and_wake_a_waiting_poll(sandbox: Sandbox) -> None:
    status, first = await call("GET", f"{sandbox.page_url}/api/unread?staff=v001")
    assert status == 200 and set(first["counts"]) >= {"cid-shangyang", "cid-huayuan", "@direct"}
    assert all(n == 0 for n in first["counts"].values())
    # A poll parked on the version it holds answers once another group gains a message.
    waiting = asyncio.ensure_future(
        call("GET", f"{sandbox.page_url}/api/unread", params={"since": first["version"], "wait": "20"})
    )
    await post(sandbox, SUBMISSION)
    await bot_said(sandbox, "cid-shangyang", "已登记 #1")
    await post(sandbox, "@两难助手 上报 #1 村里无法协调")
    await bot_said(sandbox, "cid-huayuan", "新上报 #1")  # the township group's notice
    _, woke = await waiting
    assert woke["version"] != first["version"]
    _, now = await call("GET", f"{sandbox.page_url}/api/unread?staff=v001")
    assert now["counts"]["cid-huayuan"] == len(sandbox.emulator.history["cid-huayuan"]) >= 1
    assert now["counts"]["cid-shangyang"] == len(sandbox.emulator.history["cid-shangyang"]) == 4
    assert now["counts"]["cid-hangbu"] == 0
    # The township lead 王五 is told one to one as well: his 单聊 view counts it, 张三's does not.
    await sandbox.emulator.wait_for(lambda: any(s.channel == "user" for s in sandbox.emulator.sent), timeout=15)
    _, lead = await call("GET", f"{sandbox.page_url}/api/unread?staff=t101")
    assert lead["counts"]["@direct"] == 1 and now["counts"]["@direct"] == 0


async def test_reset_empties_the_database_and_the_conversations_and_numbering_restarts(sandbox: Sandbox) -> None:
    await post(sandbox, SUBMISSION)
    await bot_said(sandbox, "cid-shangyang", "已登记 #1")
    await post(sandbox, "@两难助手 上报 上洋村路灯坏了一个月,晚上出行不便")
    await bot_said(sandbox, "cid-shangyang", "已登记 #2")
    await sandbox.runtime.pipeline.drain()  # type: ignore[union-attr]
    # Not without the page's confirmation (nor from a plain cross-site form).
    refused, why = await call("POST", f"{sandbox.page_url}/api/reset", data="confirm=true")
    assert refused == 400 and "确认" in why
    assert len(sandbox.emulator.history["cid-shangyang"]) == 4
    status, _ = await call("POST", f"{sandbox.page_url}/api/reset", json={"confirm": True})
    assert status == 200
    engine = sandbox.runtime.app.engine
    with Session(engine) as s:
        assert s.exec(select(Issue)).all() == [] and s.exec(select(IssueEvent)).all() == []
        assert s.exec(select(OutboxMessage)).all() == []
        assert s.get(Person, "v001") is not None  # the org file's people are back
    _, shown = await call("GET", f"{sandbox.page_url}/api/messages?conversation=cid-shangyang&since=4")
    assert shown == {"messages": [], "total": 0}  # a page holding 4 sees the reset at once
    _, counts = await call("GET", f"{sandbox.page_url}/api/unread")
    assert all(n == 0 for n in counts["counts"].values())
    await post(sandbox, "@两难助手 上报 上洋村水渠堵塞,雨天农田被淹,请尽快疏通")
    await bot_said(sandbox, "cid-shangyang", "已登记 #1")
    _, after = await call("GET", f"{sandbox.page_url}/api/messages?conversation=cid-shangyang")
    assert [m["bot"] for m in after["messages"]] == [False, True] and "已登记 #1" in after["messages"][1]["html"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_dashboard_has_a_fixed_port_and_says_so_when_it_is_taken(tmp_path: Path) -> None:
    app = build(settings(tmp_path))
    try:
        wanted = free_port()
        async with running(app, 0, dashboard_port=wanted) as s:
            assert s.dashboard_url.startswith(f"http://127.0.0.1:{wanted}/dashboard?token=") and not s.dashboard_note
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            async with running(app, 0, dashboard_port=port) as s:
                assert f"看板端口 {port} 已被占用" in s.dashboard_note and "--dashboard-port" in s.dashboard_note
                assert f":{port}/" not in s.dashboard_url
                status, body = await call("GET", s.dashboard_url)
                assert status == 200 and "看板" in body
    finally:
        app.engine.dispose()


def test_the_cli_has_a_dashboard_port_flag(capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main

    with pytest.raises(SystemExit):
        main(["sandbox", "--help"])
    out = capsys.readouterr().out
    assert "--dashboard-port" in out and "8081" in out


async def test_the_sync_contacts_button_runs_org_sync_against_the_emulator(sandbox: Sandbox) -> None:
    """同步通讯录: the emulator's DingTalk directory is the org file's tree and people plus one
    newcomer; a sync adds the newcomer under their village, the file's people keep their roles,
    and a second sync has nothing to do."""
    from sqlmodel import Session

    from bot.sandbox.contacts import NEWCOMER
    from models.tables import Person, Unit

    page = await call("GET", f"{sandbox.page_url}/")
    assert page[0] == 200 and 'id="sync-contacts"' in page[1] and "同步通讯录" in page[1]
    refused = await call("POST", f"{sandbox.page_url}/api/contacts/sync", data="x")
    assert refused[0] == 400  # a form post from another page: JSON only
    status, body = await call("POST", f"{sandbox.page_url}/api/contacts/sync", json={})
    assert status == 200, body
    lines = body["lines"]
    assert any(NEWCOMER[1] in line for line in lines) and lines[-1].startswith("已同步 1 项改动"), lines
    assert "139" not in "".join(lines)  # the mobile DingTalk answers is never shown
    engine = sandbox.runtime.app.engine
    with Session(engine) as s:
        newcomer, lead = s.get(Person, NEWCOMER[0]), s.get(Person, "t101")
        assert newcomer is not None and lead is not None
        unit = s.get(Unit, newcomer.unit_id)
        first_village = next(u.name for u in sandbox.runtime.app.org.units if u.kind == "village")
        assert unit is not None and (unit.name, newcomer.role, newcomer.active) == (
            first_village,
            "village_staff",
            True,
        )
        assert lead.role == "township_lead"  # the file's role stands
    again = await call("POST", f"{sandbox.page_url}/api/contacts/sync", json={})
    assert again == (200, {"lines": ["与钉钉通讯录一致,无需改动。"]})
