"""The sandbox page's JSON endpoints against the emulator and the real bot (no browser)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import build
from bot.cli import main
from bot.commands.sandbox import PortInUse, running
from bot.org import Org, load_org
from bot.sandbox.emulator import Emulator
from bot.sandbox.markdown import Mentions, render_markdown, render_plain
from bot.sandbox.web import SandboxPage, personas_of, split_mentions
from models.markdown import render_markdown as to_dingtalk
from tests.dingtalk import Rig, settings

SUBMISSION = "@两难助手 上报 上洋村村民李某反映宅基地审批8个月未批复,涉及历史遗留,联系电话13812345678"


@asynccontextmanager
async def serve_page(emulator: Emulator, org: Org, **kw: Any) -> AsyncIterator[tuple[TestClient, SandboxPage]]:
    sandbox = SandboxPage(emulator, org, long_poll_s=60, **kw)
    client = TestClient(TestServer(sandbox.app(), host="127.0.0.1"))
    await client.start_server()
    try:
        yield client, sandbox
    finally:
        await client.close()


@pytest.fixture
async def page(rig: Rig) -> AsyncIterator[tuple[TestClient, SandboxPage]]:
    async with serve_page(rig.emulator, rig.app.org) as served:
        yield served


@pytest.fixture
async def botless_page(emulator_server: tuple[Emulator, TestServer]) -> AsyncIterator[tuple[TestClient, SandboxPage]]:
    """No bot connected: nothing acks, so only the page itself can wake a waiting poll."""
    async with serve_page(emulator_server[0], load_org()) as served:
        yield served


async def parked(sandbox: SandboxPage, n: int = 1) -> None:
    async with sandbox.changed:
        await asyncio.wait_for(sandbox.changed.wait_for(lambda: sandbox.waiting == n), 10)


async def post(client: TestClient, text: str, staff: str = "v001", cid: str = "cid-shangyang") -> dict:
    response = await client.post("/api/messages", json={"conversation": cid, "staff_id": staff, "text": text})
    assert response.status == 200, await response.text()
    return await response.json()


async def messages_after(client: TestClient, cid: str, since: int) -> list[dict]:
    """Long-poll for what follows `since`; the bound is far below the long-poll's own 60 s, so
    a page that is not woken by the emulator fails here instead of passing slowly."""
    response = await asyncio.wait_for(
        client.get("/api/messages", params={"conversation": cid, "since": since, "wait": 60}), 10
    )
    assert response.status == 200
    return (await response.json())["messages"]


async def test_org_lists_the_groups_in_level_order_and_every_person(page: tuple[TestClient, SandboxPage]) -> None:
    client, sandbox = page
    org = await (await client.get("/api/org")).json()
    assert [g["id"] for g in org["groups"]] == [
        "cid-district",
        "cid-huayuan",
        "cid-hangbu",
        "cid-shiliang",
        "cid-shangyang",
    ]
    assert org["groups"][0]["title"] == "柯城区两难问题三级联动群"
    assert len(org["people"]) == len(sandbox.people) == 21
    zhang = next(p for p in org["people"] if p["id"] == "v001")
    assert zhang == {"id": "v001", "name": "张三", "role": "村干部", "unit": "花园街道·上洋村", "home": "cid-shangyang"}
    qian = next(p for p in org["people"] if p["id"] == "p001")
    assert (qian["role"], qian["unit"], qian["home"]) == ("部门联络员", "区自然资源局", "cid-district")


async def test_a_post_reaches_the_bot_and_its_receipt_comes_back_by_long_poll(
    rig: Rig, page: tuple[TestClient, SandboxPage]
) -> None:
    client, _ = page
    sent = await post(client, SUBMISSION)
    payload_text = rig.emulator.history["cid-shangyang"][0]["text"]
    assert "@两难助手" not in payload_text and payload_text.strip().startswith("上报 上洋村")  # cut as DingTalk does
    first = await messages_after(client, "cid-shangyang", 0)
    assert first[0]["who"] == "张三" and first[0]["meta"] == "村干部 · 花园街道·上洋村"
    assert '<span class="at">@两难助手</span>' in first[0]["html"]  # shown as typed
    replies = first[1:] or await messages_after(client, "cid-shangyang", 1)
    assert replies[0]["bot"] and replies[0]["html"].startswith("<div>已登记 #1【花园街道·上洋村】")
    assert "138****5678" in replies[0]["html"] and "13812345678" not in replies[0]["html"]
    assert rig.emulator.delivered[sent["msg_id"]] == 1


async def test_bot_mentions_by_staff_id_show_as_highlighted_names(
    rig: Rig, page: tuple[TestClient, SandboxPage]
) -> None:
    client, _ = page
    # A new case at the township: its lead 王五 is a member of the township group, @-ed there.
    await post(client, "@两难助手 上报 花园街道某小区物业纠纷,业主情绪激动", staff="t001", cid="cid-huayuan")
    await rig.emulator.wait_for(lambda: len(rig.emulator.history["cid-huayuan"]) == 2)
    replies = await messages_after(client, "cid-huayuan", 1)
    assert "@t101" in rig.emulator.history["cid-huayuan"][1]["text"]  # what DingTalk received
    assert '<span class="at">@王五</span>' in replies[0]["html"] and "t101" not in replies[0]["html"]
    # Escalated from the village, the notice in the township group goes through the OpenAPI: no @.
    await post(client, SUBMISSION)
    await rig.emulator.wait_for(lambda: len(rig.emulator.history["cid-shangyang"]) == 2)
    await post(client, "@两难助手 上报 #2 村里无法协调")
    await rig.emulator.wait_for(lambda: len(rig.emulator.history["cid-huayuan"]) == 3)
    upper = await messages_after(client, "cid-huayuan", 2)
    assert upper[0]["bot"] and "新上报 #2" in upper[0]["html"] and '<span class="at">' not in upper[0]["html"]


async def test_typed_mentions_become_staff_ids(rig: Rig, page: tuple[TestClient, SandboxPage]) -> None:
    client, _ = page
    answer = await post(client, "@两难助手 交办 #9 @钱七 @钱七 区自然资源局", staff="d001", cid="cid-district")
    assert answer["mentions"] == ["钱七"]
    frame = rig.emulator.history["cid-district"][0]
    assert "钱七" not in frame["text"] and "区自然资源局" in frame["text"]


async def test_a_waiting_poll_wakes_on_a_post_even_with_no_bot(botless_page: tuple[TestClient, SandboxPage]) -> None:
    client, sandbox = botless_page
    waiting = asyncio.ensure_future(messages_after(client, "cid-district", 0))
    await parked(sandbox)
    await post(client, "@两难助手 帮助", staff="d001", cid="cid-district")
    got = await waiting
    assert [m["who"] for m in got] == ["赵六"]


async def test_shutdown_releases_a_waiting_poll(botless_page: tuple[TestClient, SandboxPage]) -> None:
    client, sandbox = botless_page
    waiting = asyncio.ensure_future(messages_after(client, "cid-hangbu", 0))
    await parked(sandbox)
    await sandbox._shutdown(client.app)  # type: ignore[arg-type]
    assert await waiting == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"conversation": "cid-shangyang", "staff_id": "nobody", "text": "帮助"}, 400),
        ({"conversation": "cid-elsewhere", "staff_id": "v001", "text": "帮助"}, 400),
        ({"conversation": "cid-shangyang", "staff_id": "v001", "text": "   "}, 400),
        (["cid-shangyang", "v001", "帮助"], 400),
    ],
)
async def test_bad_posts_are_refused_and_deliver_nothing(
    rig: Rig, page: tuple[TestClient, SandboxPage], body: object, status: int
) -> None:
    client, _ = page
    response = await client.post("/api/messages", json=body)
    assert response.status == status
    assert not rig.emulator.delivered


async def test_unknown_conversation_and_person_are_404(page: tuple[TestClient, SandboxPage]) -> None:
    client, _ = page
    assert (await client.get("/api/messages", params={"conversation": "nope"})).status == 404
    assert (await client.get("/api/direct", params={"staff": "nope"})).status == 404


async def test_page_and_its_files_are_served(page: tuple[TestClient, SandboxPage]) -> None:
    client, _ = page
    index = await client.get("/")
    assert index.status == 200 and "两难助手" in await index.text()
    for name in ("app.js", "style.css"):
        assert (await client.get(f"/static/{name}")).status == 200


def test_markdown_keeps_line_breaks_bold_lists_and_escapes() -> None:
    mentions = Mentions({"t101": "王五"})
    text = "**已交办** #1\n- 电话 138****5678 和 139****1234\n- 第二项\n1. 一\n<b>x</b> @t101"
    html = render_markdown(to_dingtalk(text).replace("\\*\\*已交办\\*\\*", "**已交办**"), mentions)
    assert html == (
        "<div><strong>已交办</strong> #1</div>"
        "<ul><li>电话 138****5678 和 139****1234</li><li>第二项</li></ul>"
        '<ol start="1"><li>一</li></ol>'
        '<div>&lt;b&gt;x&lt;/b&gt; <span class="at">@王五</span></div>'
    )


def test_the_sandbox_renders_like_dingtalk_never_kinder() -> None:
    mentions = Mentions({"t101": "王五"})
    # A lone \n does not break a line in DingTalk markdown; two spaces before it do.
    assert render_markdown("第一行\n第二行", mentions) == "<div>第一行 第二行</div>"
    assert render_markdown("第一行  \n第二行", mentions) == "<div>第一行<br>第二行</div>"
    # Unescaped stars are emphasis, as in any markdown renderer; escaped ones are stars.
    assert "<strong>" in render_markdown("电话 138****5678、139****4321", mentions)
    assert render_markdown(to_dingtalk("电话 138****5678、139****4321"), mentions) == (
        "<div>电话 138****5678、139****4321</div>"
    )
    # An OpenAPI send carries no at: an @<staffId> in it shows raw, an @name is plain text.
    assert render_markdown("@t101 请研判 @王五", mentions.of_message([])) == "<div>@t101 请研判 @王五</div>"
    at_lead = mentions.of_message(["t101"])  # a session-webhook reply with at.atUserIds
    assert render_markdown("@t101 请研判", at_lead) == '<div><span class="at">@王五</span> 请研判</div>'


def test_longest_mention_wins_and_plain_text_keeps_its_lines() -> None:
    mentions = Mentions({"t10": "甲", "t101": "王五"})
    assert render_plain("@t101 好\n<i>", mentions) == '<span class="at">@王五</span> 好<br>&lt;i&gt;'


def test_split_mentions_cuts_names_and_keeps_spaces() -> None:
    people = personas_of(load_org())
    assert split_mentions("@两难助手 交办 #1 @钱七 限3天", people) == (" 交办 #1  限3天", ["p001"])


async def test_the_page_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        app = build(settings(tmp_path))
        with pytest.raises(PortInUse):
            async with running(app, taken.getsockname()[1]):
                pass
        app.engine.dispose()


def test_sandbox_is_a_cli_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["sandbox", "--help"])
    assert "--port" in capsys.readouterr().out


async def test_a_photo_attached_on_the_page_goes_the_way_of_a_dingtalk_picture(page, rig: Rig) -> None:  # type: ignore[no-untyped-def]
    import base64

    from sqlmodel import Session, select

    from bot.sandbox.emulator import png
    from models.tables import PhotoDownload

    client, _ = page
    image = png()
    data_url = "data:image/png;base64," + base64.b64encode(image).decode()
    body = {"conversation": "cid-shangyang", "staff_id": "v001", "text": SUBMISSION, "photo": data_url}
    response = await client.post("/api/messages", json=body)
    assert response.status == 200, await response.text()
    await rig.emulator.wait_for(lambda: any(s.text.startswith("已登记 #1") for s in rig.emulator.sent))
    await rig.runtime.pipeline.drain()  # type: ignore[union-attr]
    await rig.runtime.photos.idle()  # type: ignore[union-attr]
    with Session(rig.app.engine) as s:
        rows = list(s.exec(select(PhotoDownload)))
    assert [(r.issue_id, r.status, r.size) for r in rows] == [(1, "stored", len(image))]
    bad = await client.post("/api/messages", json={**body, "photo": "not base64!"})
    assert bad.status == 400 and "照片" in await bad.text()


def test_the_sandbox_has_its_own_database_emptied_at_each_start(tmp_path: Path) -> None:
    """Never `liandong run`'s (DATABASE_URL): clock jumps write future-dated events."""
    from bot.commands.sandbox import sandbox_database, sandbox_settings
    from bot.config import Settings
    from models.clock import SHANGHAI, FrozenClock
    from tests.conftest import Chat

    run_url = f"sqlite:///{tmp_path}/liandong.db"
    file = tmp_path / "data" / "sandbox.db"
    settings = sandbox_database(sandbox_settings(Settings.from_env(environ={"DATABASE_URL": run_url})), file)
    assert settings.database_url == f"sqlite:///{file}" != run_url
    assert settings.photos_dir == tmp_path / "data" / "sandbox-photos"
    clock = FrozenClock(datetime(2020, 3, 2, 9, 0, tzinfo=SHANGHAI))
    app = build(settings, clock)
    chat = Chat(app, clock)
    assert chat.say("v001", "上报 上洋村路灯坏了一个月,晚上出行不便,请尽快修复").issue_id == 1
    app.engine.dispose()
    kept = build(sandbox_database(settings, file, keep=True), clock)
    assert Chat(kept, clock).say("v001", "上报 上洋村水渠堵塞,雨天农田被淹,请尽快疏通", msg_id="kept").issue_id == 2
    kept.engine.dispose()
    fresh = build(sandbox_database(settings, file), clock)  # a new start: the page is empty, so is #N
    assert Chat(fresh, clock).say("v001", "上报 上洋村水渠堵塞,雨天农田被淹,请尽快疏通", msg_id="fresh").issue_id == 1
    fresh.engine.dispose()
    assert not (tmp_path / "liandong.db").exists()
