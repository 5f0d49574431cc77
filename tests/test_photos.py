"""Photos kept on receipt: a picture through the real SDK and the emulator is fetched at once
(the emulator serves a real PNG for a download code it issued), stored once, content-addressed,
and served only to readers whose scope holds the case; an expired code is retried, then
recorded as lost and shown as such. Clocks are frozen; retries are made due by moving them."""

from __future__ import annotations

import hashlib
import io
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image
from sqlmodel import Session, col, select

from bot import thumbnails
from bot.app import App, build
from bot.photos_store import MAX_BYTES, NotAnImage, PhotoStore, TooLarge, sniff
from bot.runtime import Runtime
from bot.sandbox.emulator import Emulator, png
from bot.transport import photos as worker
from bot.web import create_web_app, pages
from bot.web.auth import Tokens
from handlers import replies as r
from models.clock import FrozenClock
from models.tables import CountFact, Issue, IssueEvent, PhotoDownload
from models.verify import verify_chains
from tests.dingtalk import settings, start_runtime

GROUP, PRIVATE = "cid-shangyang", "cid-private-v001"
SUBMISSION = "上报 上洋村村民反映宅基地审批8个月未批复,联系电话13812345678"
IN_SCOPE, OUT_OF_SCOPE = "ld_test_huayuan_photo", "ld_test_hangbu_photo"


@dataclass
class PhotoRig:
    emulator: Emulator
    app: App
    runtime: Runtime
    clock: FrozenClock
    photos_dir: Path

    async def deliver(self, payload: dict[str, Any]) -> None:
        """Push a message and wait until the bot acknowledged it (it is in the inbox then)."""
        before = len(self.emulator.acks)
        await self.emulator.deliver(payload)
        await self.emulator.wait_for(lambda: len(self.emulator.acks) > before)

    async def settle(self) -> None:
        """Everything delivered is processed, its replies sent and its pictures fetched (or retried later)."""
        await self.runtime.pipeline.drain()  # type: ignore[union-attr]
        await self.runtime.sender.idle()  # type: ignore[union-attr]
        await self.runtime.photos.idle()  # type: ignore[union-attr]

    async def later(self, delta: timedelta) -> None:
        """Move both clocks on (retries become due) and let the worker run what is due."""
        self.clock.at += delta
        await self.settle()

    def rows(self) -> list[PhotoDownload]:
        with Session(self.app.engine) as s:
            return list(s.exec(select(PhotoDownload).order_by(col(PhotoDownload.id))))

    def files(self) -> list[Path]:
        return sorted(p for p in self.photos_dir.rglob("*") if p.is_file())

    def timeline(self, issue_id: int = 1) -> list[tuple[str, dict[str, Any]]]:
        with Session(self.app.engine) as s:
            q = select(IssueEvent).where(IssueEvent.issue_id == issue_id).order_by(col(IssueEvent.seq))
            return [(e.kind, e.data) for e in s.exec(q)]

    def counts(self) -> tuple[list[tuple[Any, ...]], Any]:
        """Every kept count row and the case's projection time, to show an event left them be."""
        with Session(self.app.engine) as s:
            facts = s.exec(select(CountFact).order_by(col(CountFact.id))).all()
            issue = s.get(Issue, 1)
            assert issue is not None
            return [tuple(f.model_dump().items()) for f in facts], issue.updated_at

    def web(self) -> TestClient:
        directory = self.app.dispatcher.directory
        tokens = Tokens()
        tokens.add(IN_SCOPE, directory.find("花园街道"))  # type: ignore[arg-type]
        tokens.add(OUT_OF_SCOPE, directory.find("航埠镇"))  # type: ignore[arg-type]
        return TestClient(TestServer(create_web_app(self.app, self.clock, tokens), host="127.0.0.1"))


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def photo_rig(tmp_path: Path, emulator_server: tuple[Emulator, TestServer]) -> AsyncIterator[PhotoRig]:
    """The real runtime (SDK stream client, outbox sender, photo worker) against the emulator, the
    bot and the emulator on one frozen clock (so download codes expire when the test says)."""
    emulator, server = emulator_server
    clock = FrozenClock(datetime.now(UTC).replace(microsecond=0))
    emulator.clock = clock
    app = build(settings(tmp_path), clock)
    runtime = await start_runtime(app, server, clock)
    await emulator.wait_for(lambda: len(emulator.connections) == 1)
    yield PhotoRig(emulator, app, runtime, clock, tmp_path / "photos")
    await runtime.stop()
    app.engine.dispose()


async def test_a_picture_is_kept_once_and_served_only_in_scope(photo_rig: PhotoRig) -> None:
    rig, em = photo_rig, photo_rig.emulator
    first, again = em.add_file(), em.add_file()  # the same photo sent twice: two codes, one file
    # In a group: the picture in the same message as the @ and the text (richText).
    await rig.deliver(em.rich_text_message(GROUP, "v001", "张三", SUBMISSION, [first]))
    await rig.settle()
    # In the 1:1 chat: a picture on its own, within 10 minutes; DingTalk redelivers it.
    rig.clock.at += timedelta(minutes=3)
    alone = em.picture_message(PRIVATE, "v001", "张三", again, conversation_type="1")
    await rig.deliver(alone)
    await rig.deliver(alone)
    await rig.settle()

    expected = png()
    digest = hashlib.sha256(expected).hexdigest()
    rows = rig.rows()
    assert [(p.issue_id, p.status, p.sha256, p.size, p.content_type) for p in rows] == [
        (1, "stored", digest, len(expected), "image/png")
    ] * 2
    assert [p.event_seq for p in rows] == [2, 4]  # each beside its own `picture` event
    assert (em.downloads[first], em.downloads[again]) == (1, 1)  # each code exchanged once
    kept, thumb = rig.files()
    assert kept.name == digest and kept.read_bytes() == expected and thumb.name == f"{digest}.thumb.jpg"
    # Each fetch is in the timeline, right after the picture event, with the hash.
    kinds = [(k, d.get("picture_seq"), d.get("sha256")) for k, d in rig.timeline()]
    assert kinds == [
        ("created", None, None),
        ("picture", None, None),
        ("photo_kept", 2, digest),
        ("picture", None, None),
        ("photo_kept", 4, digest),
    ]
    with Session(rig.app.engine) as s:
        assert verify_chains(s) == []  # the chain holds and a replay gives the same projection
    replies = [s.text for s in em.sent]
    assert any(t.startswith("已登记 #1") for t in replies) and "已将 1 张照片附到 #1。" in replies

    async with rig.web() as web:
        page = await (await web.get("/dashboard/issues/1", headers=auth(IN_SCOPE))).text()
        src = f"/dashboard/issues/1/photos/{digest}"
        # The thumbnail, linking to the full photo.
        shown = f'<a href="{src}"><img class="photo" src="{src}/thumb"'
        assert page.count(shown) == 2 and f"照片已保存 · {digest[:16]}" in page
        assert page.count("现场照片已保存") == 2  # the two photo_kept events in the timeline
        assert first not in page and again not in page  # DingTalk's codes are not shown
        shot = await web.get(src, headers=auth(IN_SCOPE))
        assert shot.status == 200 and shot.content_type == "image/png" and await shot.read() == expected
        small = await web.get(f"{src}/thumb", headers=auth(IN_SCOPE))
        assert small.status == 200 and small.content_type == "image/jpeg"
        with Image.open(io.BytesIO(await small.read())) as img:
            assert (img.format, img.size) == ("JPEG", (4, 3))  # never enlarged
        detail = await (await web.get("/api/issues/1", headers=auth(IN_SCOPE))).json()
        (pic,) = next(e for e in detail["events"] if e["seq"] == 2)["pictures"]
        assert pic["status"] == "stored" and pic["sha256"] == digest
        assert pic["thumb_url"] == f"/api/issues/1/photos/{digest}/thumb"
        api_shot = await web.get(pic["url"], headers=auth(IN_SCOPE))
        assert api_shot.status == 200 and await api_shot.read() == expected
        api_thumb = await web.get(pic["thumb_url"], headers=auth(IN_SCOPE))
        assert api_thumb.status == 200 and await api_thumb.read() == thumb.read_bytes()
        # A reader whose scope does not hold the case: 404, as for a photo that does not exist.
        for path in (src, f"{src}/thumb", pic["url"], pic["thumb_url"], "/dashboard/issues/1"):
            assert (await web.get(path, headers=auth(OUT_OF_SCOPE))).status == 404, path
        for missing in ("0" * 64, f"{'0' * 64}/thumb"):
            assert (await web.get(f"/dashboard/issues/1/photos/{missing}", headers=auth(IN_SCOPE))).status == 404
        assert (await web.get(src)).status == 401 and (await web.get(f"{src}/thumb")).status == 401


async def test_an_expired_code_is_retried_then_recorded_as_lost_and_shown(photo_rig: PhotoRig) -> None:
    rig, em = photo_rig, photo_rig.emulator
    code = em.add_file(ttl=timedelta(minutes=5))
    await rig.deliver(em.user_message(GROUP, "v001", "张三", SUBMISSION))
    await rig.settle()
    rig.clock.at += timedelta(minutes=6)  # the code expired before the picture was processed
    await rig.deliver(em.picture_message(PRIVATE, "v001", "张三", code, conversation_type="1"))
    await rig.settle()
    (row,) = rig.rows()
    assert (row.status, row.attempts) == ("pending", 1) and "HTTP 400" in (row.last_error or "")
    assert "已将 1 张照片附到 #1。" in [s.text for s in em.sent]  # the reply did not wait for the fetch
    for _ in range(worker.CODE_ATTEMPTS - 1):
        await rig.later(timedelta(minutes=15))  # past any backoff
    (row,) = rig.rows()
    assert (row.status, row.attempts, row.sha256) == ("lost", worker.CODE_ATTEMPTS, None)
    assert em.downloads[code] == worker.CODE_ATTEMPTS and rig.files() == []
    await rig.later(timedelta(hours=1))
    assert em.downloads[code] == worker.CODE_ATTEMPTS  # lost stays lost
    lost = [(k, d) for k, d in rig.timeline() if k.startswith("photo_")]
    why = {"picture_seq": 2, "attempts": worker.CODE_ATTEMPTS, "reason": "钉钉下载码无效或已过期"}
    assert lost == [("photo_lost", why)]

    async with rig.web() as web:
        page = await (await web.get("/dashboard/issues/1", headers=auth(IN_SCOPE))).text()
        assert 'data-photo="lost"' in page and "照片未能保存" in page and "<img" not in page
        assert "钉钉下载码无效或已过期(已试 3 次)" in page  # the photo_lost event's line
        detail = await (await web.get("/api/issues/1", headers=auth(IN_SCOPE))).json()
        (pic,) = next(e for e in detail["events"] if e["kind"] == "picture")["pictures"]
        assert pic["status"] == "lost" and pic["url"] is None and "HTTP 400" in pic["error"]


async def test_a_server_error_is_retried_and_then_kept(photo_rig: PhotoRig) -> None:
    rig, em = photo_rig, photo_rig.emulator
    em.faults.fail_next["/v1.0/robot/messageFiles/download"] = 2
    code = em.add_file()
    await rig.deliver(em.rich_text_message(GROUP, "v001", "张三", SUBMISSION, [code]))
    await rig.settle()
    assert [(p.status, p.attempts) for p in rig.rows()] == [("pending", 1)]
    await rig.later(timedelta(minutes=15))
    await rig.later(timedelta(minutes=15))
    assert [(p.status, p.attempts) for p in rig.rows()] == [("stored", 3)]


async def test_a_file_that_is_not_an_image_is_lost_at_once(photo_rig: PhotoRig) -> None:
    rig, em = photo_rig, photo_rig.emulator
    code = em.add_file(b"%PDF-1.4 not a picture")
    await rig.deliver(em.rich_text_message(GROUP, "v001", "张三", SUBMISSION, [code]))
    await rig.settle()
    (row,) = rig.rows()
    assert (row.status, row.attempts) == ("lost", 1) and rig.files() == []
    assert rig.timeline()[-1] == ("photo_lost", {"picture_seq": 2, "attempts": 1, "reason": "不是图片"})


async def test_pictures_are_queued_with_their_event_even_while_dingtalk_is_unreachable(photo_rig: PhotoRig) -> None:
    rig, em = photo_rig, photo_rig.emulator
    codes = [em.add_file(), em.add_file(png(2, 2, (0, 0, 255)))]
    await rig.runtime.photos.stop()  # type: ignore[union-attr]  # the worker is down
    await rig.deliver(em.rich_text_message(GROUP, "v001", "张三", "反馈 #9 无此件", codes))
    await rig.deliver(em.rich_text_message(GROUP, "v001", "张三", SUBMISSION, codes))
    await rig.runtime.pipeline.drain()  # type: ignore[union-attr]
    with Session(rig.app.engine) as s:
        pictures = list(s.exec(select(IssueEvent).where(IssueEvent.kind == "picture")))
    rows = rig.rows()
    assert len(pictures) == 1 and [(p.issue_id, p.event_seq, p.status) for p in rows] == [(1, 2, "pending")] * 2
    assert [p.code for p in rows] == codes
    # A worker started later (after a restart) takes up what was queued.
    down = rig.runtime.photos
    assert down is not None
    before = rig.counts()
    rig.clock.at += timedelta(minutes=1)  # the events' time differs from the case's last change
    later = worker.PhotoFetcher(rig.app.engine, down.api, down.store, down.run_db, rig.clock)
    await later.idle()
    assert [p.status for p in rig.rows()] == ["stored", "stored"] and len(rig.files()) == 4  # two and thumbnails
    assert [k for k, _ in rig.timeline()] == ["created", "picture", "photo_kept", "photo_kept"]
    assert rig.counts() == before  # no count and no projection field moved


def test_the_store_keeps_images_only_by_their_hash(tmp_path: Path) -> None:
    store = PhotoStore(tmp_path, max_bytes=1000)
    data = png()
    digest, kind = store.put(data)
    assert (digest, kind) == (hashlib.sha256(data).hexdigest(), "image/png")
    assert store.put(data) == (digest, kind) and store.read(digest) == data
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [digest, f"{digest}.thumb.jpg"]
    with pytest.raises(NotAnImage):
        store.put(b"<html>hello</html>")
    with pytest.raises(TooLarge):
        store.put(data + b"\0" * 1000)
    assert store.read("../../etc/passwd") is None and store.read("0" * 64) is None
    assert MAX_BYTES == 10 * 1024 * 1024
    assert sniff(b"\xff\xd8\xff\xe0") == "image/jpeg" and sniff(b"GIF89a..") == "image/gif"
    assert sniff(b"RIFF\0\0\0\0WEBPVP8 ") == "image/webp" and sniff(b"BM") is None


def test_a_thumbnail_fits_320_px_and_turns_upright(tmp_path: Path) -> None:
    wide = io.BytesIO()
    Image.new("RGB", (1600, 900), (10, 120, 30)).save(wide, "PNG")
    store = PhotoStore(tmp_path)
    digest, _ = store.put(wide.getvalue())
    with Image.open(store.thumb_path(digest)) as img:
        assert (img.format, img.size) == ("JPEG", (320, 180))
    # A photo kept before thumbnails existed gets its thumbnail when a page first asks.
    store.thumb_path(digest).unlink()
    assert store.has_thumb(digest) and store.read_thumb(digest) is not None
    assert not store.has_thumb("0" * 64) and not store.has_thumb("../x")
    # A phone's portrait JPEG: landscape pixels with EXIF orientation 6 (rotate 90° on display).
    exif = Image.Exif()
    exif[0x0112] = 6
    portrait = io.BytesIO()
    Image.new("RGB", (800, 400), (200, 200, 0)).save(portrait, "JPEG", exif=exif)
    with Image.open(io.BytesIO(thumbnails.thumbnail(portrait.getvalue()))) as img:
        assert img.size == (160, 320)


def _bomb(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels; its data is a few bytes (never decoded)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    data = chunk(b"IDAT", zlib.compress(b"\0" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + data + chunk(b"IEND", b"")


def test_a_decompression_bomb_or_a_broken_file_gets_no_thumbnail_and_the_page_links_the_original(
    tmp_path: Path,
) -> None:
    assert Image.MAX_IMAGE_PIXELS == thumbnails.MAX_PIXELS == 60_000_000
    store = PhotoStore(tmp_path)
    for data in (
        _bomb(10_000, 6_001),  # just over the cap: refused from the header
        _bomb(50_000, 50_000),  # 2.5 gigapixels in 100 bytes
        png()[:40],  # a PNG cut short: the magic bytes say image, the data does not decode
    ):
        digest, _ = store.put(data)
        assert store.read(digest) == data  # the original is kept: it is still evidence
        assert store.nothumb_path(digest).exists() and not store.has_thumb(digest)
        assert store.read_thumb(digest) is None
    with pytest.raises(thumbnails.NoThumbnail):
        thumbnails.thumbnail(_bomb(10_000, 6_001))
    stored = {"status": "stored", "sha256": "a" * 64, "thumb_url": None}
    item = pages._photo_item(1, {"at": None, "actor": "张三"}, stored)
    assert "<img" not in item and f'<a class="photo-original" href="/dashboard/issues/1/photos/{"a" * 64}">' in item


def test_the_replies_say_how_a_photo_reaches_the_bot() -> None:
    assert "照片请与文字一起发送(同一条消息内@我)或在与我的单聊中发送" in r.PICTURE_TOO_LATE
    assert "10分钟内发送" not in r.PICTURE_TOO_LATE
