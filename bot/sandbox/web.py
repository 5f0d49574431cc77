"""The sandbox page: the org file's groups and people, a message box that posts through the
emulator exactly as DingTalk would deliver it, and each conversation with the bot's replies.
The page follows a conversation by long-poll, woken by the emulator's own change condition."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.org import Org
from bot.sandbox.emulator import Emulator
from bot.sandbox.markdown import Mentions, render_markdown, render_plain
from models.calendar import WorkdayCalendar
from models.clock import SHANGHAI, ShiftedClock, local, short_date
from models.directory import UnitInfo
from models.vocabulary import ROLE_NAMES

BOT_NAME = "两难助手"
STATIC = Path(__file__).parent / "static"
LONG_POLL_S = 25.0
MAX_TEXT = 20_000  # well above the bot's own 4,000 limit, so the bot is the one that refuses
KIND_ORDER = {"district": 0, "township": 1, "village": 2}
KIND_NAMES = {"district": "区级", "township": "乡镇(街道)", "village": "村(社区)", "department": "部门"}
# The clock control's jumps: a day test and a wall time, the first such moment after the sandbox's now.
JUMPS: dict[str, tuple[Callable[[date, WorkdayCalendar], bool], time]] = {
    "next_workday_0900": (lambda d, cal: cal.is_workday(d), time(9)),
    "tuesday_0830": (lambda d, _cal: d.weekday() == 1, time(8, 30)),
    "monday_0900": (lambda d, _cal: d.weekday() == 0, time(9)),
    "monday_1600": (lambda d, _cal: d.weekday() == 0, time(16)),
    "tuesday_1730": (lambda d, _cal: d.weekday() == 1, time(17, 30)),
}
# What a clock move ran: (when it was due, what the job does, how many messages it wrote).
Ran = tuple[datetime, str, int]
ClockMoved = Callable[[datetime, datetime], Awaitable[Sequence[Ran]]]
Reset = Callable[[], Awaitable[None]]  # empties the bot's database (the sandbox's own file)
Sync = Callable[[], Awaitable[list[str]]]  # syncs the org from the emulator's contacts: what it printed
DIRECT = "@direct"  # the one-to-one view's key among the unread counts, as the page names it
# What the one-to-one view shows, each with the label it is shown under: a chat message from the
# bot, a work notification (工作通知, which DingTalk shows from the app, not the bot) and a DING.
DIRECT_CHANNELS = {"user": "机器人", "work": "工作通知", "ding": "DING"}


def ran_summary(ran: Sequence[Ran]) -> str:
    """One line per run a jump caused, or that nothing was due: said on the page after a jump."""
    if not ran:
        return "这段时间没有到期的定时任务。"
    lines = []
    for due, title, sent in ran:
        t = local(due)
        lines.append(f"{short_date(t.date())} {t:%H:%M} {title}:" + (f"发出 {sent} 条" if sent else "无需发送"))
    return "\n".join(lines)


def jump_target(name: str, now: datetime, calendar: WorkdayCalendar) -> datetime:
    """The first moment after `now` (Shanghai) whose day passes the jump's test, at its wall time."""
    test, wall = JUMPS[name]
    d = local(now).date()
    while True:
        at = datetime.combine(d, wall, tzinfo=SHANGHAI)
        if at > now and test(d, calendar):
            return at
        d += timedelta(days=1)


@dataclass(frozen=True)
class Group:
    id: str
    title: str
    unit: str
    kind: str


@dataclass(frozen=True)
class Persona:
    id: str
    name: str
    role: str
    unit: str
    home: str | None  # the group of their own unit or the nearest unit above it


def groups_of(org: Org) -> list[Group]:
    directory = org.directory
    found = []
    for cid, unit_name, _line in org.groups:
        unit = directory.resolve(unit_name)
        assert unit is not None  # load_org refused the file otherwise
        title = f"{unit.name}两难问题三级联动群" if unit.kind == "district" else f"{unit.name}两难群"
        found.append(Group(cid, title, directory.full_name(unit), unit.kind))
    return sorted(found, key=lambda g: KIND_ORDER.get(g.kind, 3))


def personas_of(org: Org) -> list[Persona]:
    directory = org.directory
    bound: dict[int, str] = {}
    for cid, unit_name, _line in reversed(org.groups):  # the first group of a unit wins
        group_unit = directory.resolve(unit_name)
        assert group_unit is not None  # load_org refused the file otherwise
        bound[group_unit.id] = cid
    personas = []
    for p in org.people:
        unit = directory.resolve(p.unit)
        assert unit is not None
        home: str | None = None
        up: UnitInfo | None = unit
        while home is None and up is not None:
            home = bound.get(up.id)
            up = directory.units.get(up.parent_id) if up.parent_id else None
        personas.append(Persona(p.id, p.name, ROLE_NAMES.get(p.role, p.role), directory.full_name(unit), home))
    return personas


def split_mentions(text: str, people: list[Persona]) -> tuple[str, list[str]]:
    """Cut every typed `@姓名` out of the text as DingTalk does (the spaces around it stay) and
    return the staff ids in order; `@两难助手` is the bot itself, always mentioned anyway."""
    by_name: dict[str, str] = {}
    for p in people:
        by_name.setdefault(p.name, p.id)
    labels = sorted([*by_name, BOT_NAME], key=len, reverse=True)
    ids: list[str] = []

    def cut(m: re.Match[str]) -> str:
        staff = by_name.get(m.group(1))
        if staff and staff not in ids:
            ids.append(staff)
        return ""

    return re.sub("@(" + "|".join(map(re.escape, labels)) + ")", cut, text), ids


class SandboxPage:
    def __init__(
        self,
        emulator: Emulator,
        org: Org,
        long_poll_s: float = LONG_POLL_S,
        dashboard_url: str | None = None,
        clock: ShiftedClock | None = None,
        on_clock_moved: ClockMoved | None = None,
        on_reset: Reset | None = None,
        on_sync: Sync | None = None,
    ) -> None:
        self.emulator = emulator
        self.clock = clock or ShiftedClock()  # the bot's and the emulator's clock, moved by 快进
        self.on_clock_moved = on_clock_moved  # runs what fell due between the two moments
        self.on_reset = on_reset
        self.on_sync = on_sync  # 同步通讯录: `liandong org sync` against the emulator's contacts
        self.calendar = WorkdayCalendar.from_config(org.calendar)
        self.dashboard_url = dashboard_url  # the dashboard, with a sandbox token, for the header link
        self.groups = groups_of(org)
        self.people = personas_of(org)
        self.by_id = {p.id: p for p in self.people}
        self.long_poll_s = long_poll_s
        self.mentions = Mentions({p.id: p.name for p in self.people}, (BOT_NAME,))
        self._typed: dict[str, str] = {}  # msgId → the text as typed, @names included
        # The emulator notifies when the bot acks or sends; a post of ours must wake pollers too.
        self.changed = asyncio.Condition()
        self.waiting = 0  # long-polls parked right now
        self._closing = False

    def app(self) -> web.Application:
        app = web.Application(client_max_size=256 * 1024)
        app.router.add_get("/", self._index)
        app.router.add_get("/api/org", self._org)
        app.router.add_get("/api/messages", self._messages)
        app.router.add_post("/api/messages", self._post)
        app.router.add_get("/api/direct", self._direct)
        app.router.add_get("/api/clock", self._clock)
        app.router.add_post("/api/clock", self._move_clock)
        app.router.add_get("/api/unread", self._unread)
        app.router.add_post("/api/reset", self._reset)
        app.router.add_post("/api/contacts/sync", self._sync)
        app.router.add_post("/api/press", self._press)
        app.router.add_static("/static", STATIC)
        app.on_shutdown.append(self._shutdown)
        return app

    async def _shutdown(self, _app: web.Application) -> None:
        """Release every waiting long-poll so that a stop does not wait out their timeouts."""
        self._closing = True
        async with self.changed:
            self.changed.notify_all()

    async def _index(self, _request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def _org(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {
                "bot": BOT_NAME,
                "dashboard": self.dashboard_url,
                "groups": [{**g.__dict__, "kind_name": KIND_NAMES.get(g.kind, "")} for g in self.groups],
                "people": [p.__dict__ for p in self.people],
            }
        )

    async def _clock(self, _request: web.Request) -> web.Response:
        now = local(self.clock.now())
        return web.json_response(
            {
                "now": now.isoformat(timespec="seconds"),
                "label": f"{short_date(now.date())} {now:%H:%M}",
                "shifted": self.clock.offset != timedelta(0),
            }
        )

    async def _move_clock(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        jump = body.get("jump") if isinstance(body, dict) else None
        before = self.clock.now()
        if jump == "now":
            self.clock.reset()
        elif isinstance(jump, str) and jump in JUMPS:
            self.clock.jump_to(jump_target(jump, self.clock.now(), self.calendar))
        else:
            raise web.HTTPBadRequest(text="未知的时间跳转")
        ran: Sequence[Ran] = ()
        if self.on_clock_moved:  # what became due runs now; its messages follow by long-poll
            ran = await self.on_clock_moved(before, self.clock.now())
        shown = json.loads((await self._clock(request)).text or "{}")
        return web.json_response({**shown, "ran": ran_summary(ran)})

    async def _messages(self, request: web.Request) -> web.Response:
        cid = request.query.get("conversation", "")
        if cid not in {g.id for g in self.groups}:
            raise web.HTTPNotFound(text="未知的群")
        since = _int(request.query.get("since"), 0)

        def history() -> list[dict[str, Any]]:  # looked up each time: 重置沙盒 empties it
            return self.emulator.history[cid]

        # Fewer than `since` means the sandbox was reset: the page starts the conversation over.
        await self._wait(lambda: len(history()) != since, _wait_s(request, self.long_poll_s))
        shown = history()
        entries = [self._entry(i, e) for i, e in enumerate(shown) if i >= since]
        return web.json_response({"messages": entries, "total": len(shown)})

    async def _direct(self, request: web.Request) -> web.Response:
        """What the bot sent one person one to one (units without a group, reminders)."""
        staff = request.query.get("staff", "")
        if staff not in self.by_id:
            raise web.HTTPNotFound(text="未知的人员")
        since = _int(request.query.get("since"), 0)

        def mine() -> list[Any]:
            return [s for s in self.emulator.sent if s.channel in DIRECT_CHANNELS and staff in s.user_ids]

        await self._wait(lambda: len(mine()) != since, _wait_s(request, self.long_poll_s))
        entries = [
            {"from": "bot", "title": s.title, "text": s.text, "at": s.at_user_ids, "label": DIRECT_CHANNELS[s.channel]}
            for s in mine()
        ]
        shown = [self._entry(i, e) for i, e in enumerate(entries) if i >= since]
        return web.json_response({"messages": shown, "total": len(entries)})

    def counts(self, staff: str | None) -> dict[str, int]:
        """How many messages each group holds, and the one-to-one view of `staff`: the page
        marks a conversation not shown whose count grew since it was last opened."""
        found = {g.id: len(self.emulator.history.get(g.id, ())) for g in self.groups}
        if staff in self.by_id:
            found[DIRECT] = sum(1 for s in self.emulator.sent if s.channel in DIRECT_CHANNELS and staff in s.user_ids)
        return found

    async def _unread(self, request: web.Request) -> web.Response:
        """Every conversation's count, once it differs from the `since` version the page holds."""
        staff = request.query.get("staff")
        since = request.query.get("since", "")

        def version() -> str:
            return ",".join(f"{k}={n}" for k, n in sorted(self.counts(staff).items()))

        await self._wait(lambda: version() != since, _wait_s(request, self.long_poll_s))
        return web.json_response({"version": version(), "counts": self.counts(staff)})

    async def _reset(self, request: web.Request) -> web.Response:
        """重置沙盒: the bot's database emptied (numbering starts again at #1) and every
        conversation forgotten; each open page starts its view over on its next poll. JSON only:
        a browser asks before sending that cross-site, so another page cannot reset this one."""
        try:
            body = await request.json() if request.content_type == "application/json" else None
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("confirm") is not True:
            raise web.HTTPBadRequest(text="请先确认重置")
        if self.on_reset:
            await self.on_reset()
        self.emulator.reset()
        self._typed.clear()
        async with self.changed:
            self.changed.notify_all()
        return web.json_response({"reset": True})

    async def _sync(self, request: web.Request) -> web.Response:
        """同步通讯录: what `liandong org sync` does, against the emulator's contact API; the
        lines it printed. JSON only, as 重置沙盒, so another page cannot make the browser post it."""
        if request.content_type != "application/json" or self.on_sync is None:
            raise web.HTTPBadRequest(text="无法同步通讯录")
        lines = await self.on_sync()
        return web.json_response({"lines": lines})

    async def _post(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        cid, staff, text = body.get("conversation"), str(body.get("staff_id")), str(body.get("text") or "")
        photo = _photo(body.get("photo"))
        if cid not in {g.id for g in self.groups}:
            raise web.HTTPBadRequest(text="请先选择一个群")
        person = self.by_id.get(staff)
        if person is None:
            raise web.HTTPBadRequest(text="请先选择身份")
        if not text.strip():
            raise web.HTTPBadRequest(text="消息不能为空")
        if len(text) > MAX_TEXT:
            raise web.HTTPBadRequest(text="消息太长")
        content, mentions = split_mentions(text, self.people)
        if photo is None:
            payload = self.emulator.user_message(cid, person.id, person.name, content, mentions=mentions)
        else:  # as DingTalk does it: the text, the @ and the picture in one richText message
            code = self.emulator.add_file(photo)
            payload = self.emulator.rich_text_message(cid, person.id, person.name, content, [code], mentions=mentions)
        self._typed[payload["msgId"]] = text
        msg_id = await self.emulator.deliver(payload)
        async with self.changed:
            self.changed.notify_all()
        return web.json_response({"msg_id": msg_id, "mentions": [self.by_id[m].name for m in mentions]})

    async def _press(self, request: web.Request) -> web.Response:
        """A card's button pressed by the persona chosen: DingTalk's card callback to the bot."""
        body = await _json_object(request)
        person = self.by_id.get(str(body.get("staff_id")))
        if person is None:
            raise web.HTTPBadRequest(text="请先选择身份")
        track, action = str(body.get("track") or ""), str(body.get("action") or "")
        reason = str(body.get("reason") or "")[:MAX_TEXT]
        if track not in self.emulator.cards.cards:
            raise web.HTTPNotFound(text="卡片不存在")
        try:
            await self.emulator.cards.press(track, person.id, action, reason)
        except ValueError:
            raise web.HTTPBadRequest(text="按钮已失效") from None
        except RuntimeError:
            raise web.HTTPServiceUnavailable(text="机器人未订阅卡片回调") from None
        return web.json_response({"ok": True})

    async def _wait(self, ready: Callable[[], bool], timeout: float) -> None:
        """Until `ready()`, the timeout, or shutdown; whichever comes first. Never a sleep loop."""
        if ready() or timeout <= 0 or self._closing:
            return

        async def posted() -> None:
            async with self.changed:
                self.waiting += 1
                self.changed.notify_all()  # so whoever watches `waiting` sees this poll parked
                try:
                    await self.changed.wait_for(lambda: ready() or self._closing)
                finally:
                    self.waiting -= 1

        waiters = [asyncio.ensure_future(self.emulator.wait_for(ready, timeout)), asyncio.ensure_future(posted())]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    def _entry(self, n: int, e: dict[str, Any]) -> dict[str, Any]:
        if e.get("from") == "bot":
            # An OpenAPI send carries no at: its text is shown as sent, an @<staffId> raw.
            html = render_markdown(str(e.get("text", "")), self.mentions.of_message(list(e.get("at") or [])))
            meta = str(e.get("label") or "机器人")  # a work notification or a DING says so
            entry = {"n": n, "bot": True, "from": "bot", "who": BOT_NAME, "meta": meta, "html": html}
            card = self.emulator.cards.cards.get(str(e.get("card") or ""))
            if card is not None:  # an interactive card: its buttons as they stand now
                entry["meta"] = "机器人 · 互动卡片"
                entry["card"] = {
                    "track": card.out_track_id,
                    "buttons": card.buttons(),
                    "input": card.params.get("inputHint", "") if card.buttons() else "",
                    "answer": card.params.get("answer", "") if card.params.get("answered") == "true" else "",
                }
            return entry
        person = self.by_id.get(str(e.get("from")))
        text = self._typed.get(str(e.get("msg_id")), str(e.get("text", "")))
        return {
            "n": n,
            "bot": False,
            "from": e.get("from"),
            "who": person.name if person else str(e.get("nick") or e.get("from")),
            "meta": f"{person.role} · {person.unit}" if person else "",
            "html": render_plain(text, self.mentions),
        }


def _int(value: str | None, default: int) -> int:
    try:
        return max(0, int(value)) if value is not None else default
    except ValueError:
        return default


def _wait_s(request: web.Request, cap: float) -> float:
    try:
        return min(cap, max(0.0, float(request.query.get("wait", "0"))))
    except ValueError:
        return 0.0


MAX_PHOTO = 10 * 1024 * 1024  # what the bot keeps at most (bot.photos_store)


def _photo(value: object) -> bytes | None:
    """The picture attached on the page, base64 as the browser's FileReader gives it."""
    if value in (None, ""):
        return None
    if not isinstance(value, str) or len(value) > MAX_PHOTO * 4 // 3 + 4:
        raise web.HTTPBadRequest(text="照片太大(最多10MB)")
    try:
        return base64.b64decode(value.split(",", 1)[-1], validate=True)
    except (ValueError, binascii.Error):
        raise web.HTTPBadRequest(text="照片格式错误") from None


async def _json_object(request: web.Request) -> dict[str, Any]:
    """The page's JSON body, or 400 with a one-line reason."""
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="请求格式错误")
    return body
