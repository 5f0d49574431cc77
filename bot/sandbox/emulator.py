"""A local DingTalk: the stream gateway (connections/open + websocket frames as DingTalk sends
them, ping and disconnect), session webhooks, access tokens, OpenAPI group and one-to-one
send, custom robots with signing and their 20/minute limit, and the files users send the bot
(download codes that expire, as DingTalk's do). It records everything and has switches for
faults. Tests and the sandbox page drive the bot through it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import random
import time
import uuid
import zlib
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import WSMsgType, web

from bot.sandbox.cards import serve_cards
from bot.sandbox.contacts import serve_contacts
from bot.sandbox.login import serve_login
from bot.sandbox.notices import serve_notices
from bot.sandbox.shapes import callback_frame
from bot.sandbox.todos import serve_todos
from models.clock import Clock, SystemClock

BOT_TOPIC = "/v1.0/im/bot/messages/get"
BOT_USER_ID = "$:LWCP_v1:$sandbox-bot"
CORP_ID = "dingsandboxcorp"
ROBOT_CODE = "dingsandboxrobot"
FILE_TTL = timedelta(hours=1)  # how long a download code stays valid here (DingTalk only says 临时)
URL_TTL = timedelta(minutes=10)  # the temporary download URL a code is exchanged for
# How long a custom robot remembers a msgUuid. DingTalk's custom-robot document calls it the
# idempotency key for a retry after a timeout or an unknown error and names no window: ten
# minutes here, so that a test relying on a longer memory fails rather than passes by luck.
MSG_UUID_TTL_S = 600
# The OpenAPI calls counted against a standard-edition organisation's monthly quota (附录B: all
# but the token, login and contact APIs) that the emulator serves.
COUNTED_PATHS = frozenset(
    {
        "/v1.0/robot/groupMessages/send",
        "/v1.0/robot/oToMessages/batchSend",
        "/v1.0/robot/messageFiles/download",
        "/v1.0/robot/ding/send",
    }
)
# The counted oapi calls, which say so in the oapi style (errcode 90020, 附录B)
COUNTED_OAPI_PATHS = frozenset({"/topapi/message/corpconversation/asyncsend_v2"})
HTML_LIMIT_PAGE = "<html><body>当前访问过于频繁,请稍后再试</body></html>"  # the IP limit answers no code


def png(width: int = 4, height: int = 3, rgb: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    """A real (tiny) PNG: signature, IHDR, one IDAT of unfiltered RGB rows, IEND."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


@dataclass
class Faults:
    """Switches a test flips; each is read when the matching request or frame is handled."""

    fail_next: dict[str, int] = field(default_factory=dict)  # path → how many 500s to answer
    slow_s: float = 0.0  # delay before every HTTP answer
    redeliver_after_s: float | None = None  # push an unacked frame again after this long
    session_expired: bool = False  # session webhooks answer errcode 300001
    autoping: bool = True  # False: new sockets stop answering pings (a hung connection)
    omit_staff_id: bool = False  # outgoing robots of ordinary groups leave senderStaffId out
    # path → the next answers, each an HTTP 200 whose body is this text ("" empty, or an HTML
    # page), in place of handling the request: nothing is delivered
    raw_200_next: dict[str, list[str]] = field(default_factory=dict)
    # path → the next oapi-style errcodes to answer (-1 busy, 410100 / 130101 too fast …): nothing is delivered
    errcode_next: dict[str, list[int]] = field(default_factory=dict)
    quota_spent: bool = False  # counted OpenAPI calls answer 403 Forbidden.AccessDenied.ApiCountLimitForOrg
    flow_controlled: dict[str, int] = field(default_factory=dict)  # userId → batchSends that throttle them
    invalid_users: set[str] = field(default_factory=set)  # userIds batchSend does not know
    # Connection ids the gateway has silently given up on (a "zombie": the socket stays open and
    # answers websocket pings, but no frame reaches it, not even a SYSTEM ping; pushes go to the
    # other connections, or wait for the next one), as seen in soimy/openclaw-channel-dingtalk#308.
    zombies: set[str] = field(default_factory=set)
    # path → how many of the next requests are never answered (held until the emulator closes):
    # nothing is delivered, and the client's own timeout is all that ends its wait
    hang_next: dict[str, int] = field(default_factory=dict)


@dataclass
class Sent:
    """Something the bot sent, as DingTalk received it."""

    channel: str  # session | group | user | robot | work (工作通知) | ding
    conversation_id: str | None
    user_ids: list[str]
    title: str
    text: str
    at_user_ids: list[str]
    at: float
    webhook: str | None = None  # the session webhook it came through (one per incoming message)


@dataclass
class _Connection:
    id: str
    ws: web.WebSocketResponse
    unacked: dict[str, dict[str, Any]] = field(default_factory=dict)


class Emulator:
    def __init__(
        self,
        client_id: str = "sandbox-id",
        client_secret: str = "sandbox-secret",
        robot_secrets: dict[str, str] | None = None,
        seed: int = 7,
        clock: Clock | None = None,
    ) -> None:
        self.clock = clock or SystemClock()  # what a user message's createAt says (the sandbox may shift it)
        self.client_id, self.client_secret = client_id, client_secret
        self.robot_secrets = robot_secrets or {}  # robot access_token → signing secret
        self.faults = Faults()
        self.rng = random.Random(seed)
        self.base_url = ""
        self.sent: list[Sent] = []
        self.acks: dict[str, int] = {}  # frame messageId → ack code
        self.ack_delays: list[float] = []  # seconds from a push to its ack
        self._pushed_at: dict[str, float] = {}
        self.delivered: defaultdict[str, int] = defaultdict(int)  # msgId → times pushed
        self.history: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)  # conversation → posts
        self.connections: dict[str, _Connection] = {}
        self.opened = 0
        self.topics: set[str] = set()  # the callback topics a client subscribed to
        self._tickets: dict[str, float] = {}
        self._tokens: set[str] = set()
        self._sessions: dict[str, str] = {}  # session token → conversation
        self._robot_window: defaultdict[str, deque[float]] = defaultdict(deque)
        self._robot_blocked_until: dict[str, float] = {}
        self._robot_uuids: defaultdict[str, dict[str, float]] = defaultdict(dict)  # token → msgUuid → when
        self.deduplicated = 0  # robot posts dropped as a msgUuid already seen
        self._changed = asyncio.Condition()
        self._ids = itertools.count(1)
        self._timers: set[asyncio.TimerHandle] = set()
        self._closing = asyncio.Event()  # set by close(): what a fault holds unanswered is let go
        # DingTalk's gateway pings each live connection every 20–30 s with a SYSTEM frame
        # (soimy/openclaw-channel-dingtalk#308); the bot's watchdog counts on it. None: never.
        self.keepalive_s: float | None = 30.0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pending: list[dict[str, Any]] = []  # frames waiting for a connection
        self._files: dict[str, tuple[bytes, datetime]] = {}  # download code → (bytes, valid until)
        self._file_urls: dict[str, tuple[str, datetime]] = {}  # URL token → (download code, valid until)
        self.downloads: defaultdict[str, int] = defaultdict(int)  # download code → times asked for a URL

    # --- the HTTP application ---

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._faults_mw])
        app.router.add_post("/v1.0/gateway/connections/open", self._open)
        app.router.add_get("/connect", self._connect)
        app.router.add_post("/v1.0/oauth2/accessToken", self._token)
        app.router.add_post("/robot/sendBySession", self._session_send)
        app.router.add_post("/v1.0/robot/groupMessages/send", self._group_send)
        app.router.add_post("/v1.0/robot/oToMessages/batchSend", self._user_send)
        app.router.add_post("/v1.0/robot/messageFiles/download", self._download)
        app.router.add_post("/robot/send", self._robot_send)
        app.router.add_get("/files/{token}", self._file)
        self.contacts = serve_contacts(app, self)  # the contact API and its Stream events
        self.todos = serve_todos(app, self)  # the to-do (待办) API
        self.cards = serve_cards(app, self)  # interactive cards and their button presses
        self.login = serve_login(app, self)  # DingTalk login's auth codes and their exchange
        self.notices = serve_notices(app, self)  # work notifications and DING
        return app

    @web.middleware
    async def _faults_mw(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        if self.faults.slow_s:
            await asyncio.sleep(self.faults.slow_s)  # the fault itself: an answer that is late
        if self.faults.hang_next.get(request.path, 0):
            self.faults.hang_next[request.path] -= 1
            await self._closing.wait()  # never answered while the test runs
            return web.json_response({"code": "ServiceUnavailable", "message": "emulator closed"}, status=503)
        left = self.faults.fail_next.get(request.path, 0)
        if left:
            self.faults.fail_next[request.path] = left - 1
            return web.json_response({"code": "ServiceUnavailable", "message": "emulated 5xx"}, status=503)
        raw = self.faults.raw_200_next.get(request.path)
        if raw:
            return web.Response(text=raw.pop(0), content_type="text/html", status=200)
        codes = self.faults.errcode_next.get(request.path)
        if codes:
            return web.json_response({"errcode": codes.pop(0), "errmsg": "emulated"})
        if self.faults.quota_spent and request.path in COUNTED_OAPI_PATHS:
            return web.json_response({"errcode": 90020, "errmsg": "当月调用次数已达上限"})
        if self.faults.quota_spent and request.path in COUNTED_PATHS:
            body = {"code": "Forbidden.AccessDenied.ApiCountLimitForOrg", "message": "当月调用次数已达上限"}
            return web.json_response(body, status=403)
        return await handler(request)

    async def _open(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("clientId") != self.client_id or body.get("clientSecret") != self.client_secret:
            # As DingTalk answers it (e.g. zfanswer/dify-on-dingtalk#28).
            return web.json_response(
                {"requestid": uuid.uuid4().hex, "code": "authFailed", "message": "鉴权失败"}, status=401
            )
        ticket = uuid.uuid4().hex
        self._tickets[ticket] = time.monotonic() + 90
        subscriptions = body.get("subscriptions") if isinstance(body.get("subscriptions"), list) else []
        self.topics.update(str(t.get("topic")) for t in subscriptions if isinstance(t, dict))
        ws_base = self.base_url.replace("http://", "ws://")
        return web.json_response({"endpoint": f"{ws_base}/connect", "ticket": ticket})

    async def _connect(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if self._tickets.pop(ticket, 0) < time.monotonic():
            return web.Response(status=401, text="bad ticket")
        ws = web.WebSocketResponse(autoping=self.faults.autoping)
        await ws.prepare(request)
        conn = _Connection(uuid.uuid4().hex, ws)
        self.connections[conn.id] = conn
        self.opened += 1
        await self._notify()
        waiting, self._pending = self._pending, []
        for frame in waiting:
            await self._push(conn, frame)
        keepalive = asyncio.ensure_future(self._keepalive(conn))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._on_client_frame(conn, msg.data)
        finally:
            keepalive.cancel()
            self.connections.pop(conn.id, None)
            # Whatever it did not acknowledge goes to another connection, as DingTalk does.
            orphans = list(conn.unacked.values())
            conn.unacked.clear()  # their redelivery timers must not push them a second time
            for frame in orphans:
                self._schedule_redelivery(frame, 0.0)
            await self._notify()
        return ws

    async def _on_client_frame(self, conn: _Connection, raw: str) -> None:
        try:
            ack = json.loads(raw)
            message_id = ack["headers"]["messageId"]
        except (ValueError, KeyError, TypeError):
            return
        conn.unacked.pop(message_id, None)
        self.acks[message_id] = int(ack.get("code", 0))
        if message_id in self._pushed_at:
            self.ack_delays.append(time.monotonic() - self._pushed_at.pop(message_id))
        await self._notify()

    async def _token(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("appKey") != self.client_id or body.get("appSecret") != self.client_secret:
            return web.json_response({"code": "InvalidAuthentication"}, status=401)
        token = uuid.uuid4().hex
        self._tokens.add(token)
        return web.json_response({"accessToken": token, "expireIn": 7200})

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("x-acs-dingtalk-access-token", "") in self._tokens

    async def _session_send(self, request: web.Request) -> web.Response:
        conversation = self._sessions.get(request.query.get("session", ""))
        if conversation is None or self.faults.session_expired:
            return web.json_response({"errcode": 300001, "errmsg": "session webhook expired"})
        webhook = f"{self.base_url}{request.path_qs}"
        await self._record("session", conversation, [], await request.json(), webhook)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def _group_send(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"code": "InvalidAuthentication", "message": "token"}, status=401)
        body = await request.json()
        if (refused := self._robot_code_refused(body)) is not None:
            return refused
        await self._record("group", body.get("openConversationId"), [], _from_sample(body))
        return web.json_response({"processQueryKey": uuid.uuid4().hex})

    async def _user_send(self, request: web.Request) -> web.Response:
        """batchSend: a 200 for the call, and in it the users it did not reach (throttled, or
        unknown), who get nothing (BatchSendOTOResponseBody of DingTalk's SDK)."""
        if not self._authorized(request):
            return web.json_response({"code": "InvalidAuthentication", "message": "token"}, status=401)
        body = await request.json()
        if (refused := self._robot_code_refused(body)) is not None:
            return refused
        users = [str(u) for u in body.get("userIds") or []]
        invalid = [u for u in users if u in self.faults.invalid_users]
        throttled = [u for u in users if u not in invalid and self.faults.flow_controlled.get(u, 0) > 0]
        for u in throttled:
            self.faults.flow_controlled[u] -= 1
        reached = [u for u in users if u not in invalid and u not in throttled]
        if reached:
            await self._record("user", None, reached, _from_sample(body))
        answer = {"processQueryKey": uuid.uuid4().hex, "invalidStaffIdList": invalid}
        return web.json_response({**answer, "flowControlledStaffIdList": throttled})

    def _robot_code_refused(self, body: dict[str, Any]) -> web.Response | None:
        """The robot sends refuse an empty or foreign robotCode (机器人发送群聊消息's error table:
        invalidParameter.robotCode.empty, .notExsit); an internal app's robot code is its
        AppKey (the client id), and the sandbox's own ROBOT_CODE is accepted too."""
        code = body.get("robotCode")
        if not code:
            refused = {"code": "invalidParameter.robotCode.empty", "message": "robotCode 为空"}
        elif code not in (ROBOT_CODE, self.client_id):
            refused = {"code": "invalidParameter.robotCode.notExsit", "message": "robotCode 无效"}
        else:
            return None
        return web.json_response(refused, status=400)

    async def _download(self, request: web.Request) -> web.Response:
        """`POST /v1.0/robot/messageFiles/download {downloadCode, robotCode}` → `{downloadUrl}`; a
        code it does not know, or one past its time, is refused as DingTalk words it."""
        if not self._authorized(request):
            return web.json_response({"code": "InvalidAuthentication", "message": "token"}, status=401)
        body = await request.json()
        code = str(body.get("downloadCode") or "")
        self.downloads[code] += 1
        if (refused := self._robot_code_refused(body)) is not None:
            return refused
        known = self._files.get(code)
        now = self.clock.now()
        if known is None or known[1] <= now:
            return web.json_response({"code": "invalidParameter", "message": "下载码有误或者已经过期"}, status=400)
        token = uuid.uuid4().hex
        self._file_urls[token] = (code, now + URL_TTL)
        return web.json_response({"downloadUrl": f"{self.base_url}/files/{token}"})

    async def _file(self, request: web.Request) -> web.Response:
        found = self._file_urls.get(request.match_info["token"])
        if found is None or found[1] <= self.clock.now() or found[0] not in self._files:
            return web.Response(status=403, text="AccessDenied: Request has expired")
        return web.Response(body=self._files[found[0]][0], content_type="application/octet-stream")

    def add_file(self, data: bytes | None = None, ttl: timedelta = FILE_TTL) -> str:
        """A file a user sent: its download code, valid for `ttl` by the emulator's clock."""
        code = f"dlc-{uuid.uuid4().hex}"
        self._files[code] = (png() if data is None else data, self.clock.now() + ttl)
        return code

    def picture_message(self, conversation_id: str, staff_id: str, nick: str, code: str, **kw: Any) -> dict[str, Any]:
        """A `picture` message as DingTalk sends it (in a group only the 1:1 chat carries one alone)."""
        content = {"downloadCode": code, "pictureDownloadCode": code}
        return self.user_message(conversation_id, staff_id, nick, "", msgtype="picture", content=content, **kw)

    def rich_text_message(
        self, conversation_id: str, staff_id: str, nick: str, text: str, codes: list[str], **kw: Any
    ) -> dict[str, Any]:
        """A `richText` message: the text (after the @ the client cut out) and the pictures, in one message."""
        parts: list[dict[str, Any]] = [{"text": " " + text}]
        parts += [{"type": "picture", "downloadCode": c, "pictureDownloadCode": c} for c in codes]
        return self.user_message(
            conversation_id, staff_id, nick, "", msgtype="richText", content={"richText": parts}, **kw
        )

    async def _robot_send(self, request: web.Request) -> web.Response:
        token = request.query.get("access_token", "")
        secret = self.robot_secrets.get(token)
        if secret is None:
            return web.json_response({"errcode": 300001, "errmsg": "token is not exist"})
        ts = request.query.get("timestamp", "")
        expected = base64.b64encode(hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest())
        if (
            not ts.isdigit()
            or abs(time.time() * 1000 - int(ts)) > 3600_000
            or not hmac.compare_digest(request.query.get("sign", "").encode(), expected)
        ):
            return web.json_response({"errcode": 310000, "errmsg": "sign not match"})
        now = time.monotonic()
        if self._robot_blocked_until.get(token, 0) > now:
            return web.json_response({"errcode": 130101, "errmsg": "send too fast"})
        window = self._robot_window[token]
        while window and now - window[0] >= 60:
            window.popleft()
        if len(window) >= 20:
            self._robot_blocked_until[token] = now + 600
            return web.json_response({"errcode": 130101, "errmsg": "send too fast"})
        window.append(now)
        body = await request.json()
        # msgUuid: the same key again is answered as sent and not shown twice (DingTalk's
        # custom-robot document: retry with the same msgUuid to avoid duplicate messages).
        key = str(body.get("msgUuid") or "")
        seen = self._robot_uuids[token]
        for old in [k for k, t in seen.items() if now - t > MSG_UUID_TTL_S]:
            del seen[old]
        if key and key in seen:
            self.deduplicated += 1
            return web.json_response({"errcode": 0, "errmsg": "ok"})
        if key:
            seen[key] = now
        await self._record("robot", f"robot:{token}", [], body)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def _record(
        self, channel: str, conversation: str | None, users: list[str], body: dict[str, Any], webhook: str | None = None
    ) -> None:
        title, text = _title_text(body)
        at_ids = list((body.get("at") or {}).get("atUserIds") or [])
        sent = Sent(channel, conversation, users, title, text, at_ids, time.time(), webhook)
        self.sent.append(sent)
        if conversation:
            self.history[conversation].append({"from": "bot", "title": title, "text": text, "at": at_ids})
        await self._notify()

    # --- pushing messages to the bot ---

    def user_message(
        self,
        conversation_id: str,
        staff_id: str,
        nick: str,
        text: str,
        *,
        mentions: list[str] | None = None,
        msg_id: str | None = None,
        conversation_type: str = "2",
        union_id: str | None = None,
        msgtype: str = "text",
        content: dict[str, Any] | None = None,
        webhook_ttl_s: int = 5400,
    ) -> dict[str, Any]:
        """A bot-message payload as DingTalk sends it: every @mention cut out of the text (the
        space stays), the bot itself first in atUsers, newer fields present."""
        now_ms = int(self.clock.now().timestamp() * 1000)
        at_users = [{"dingtalkId": BOT_USER_ID}] + [
            {"dingtalkId": f"$:LWCP_v1:${m}", "staffId": m, "unionId": f"union-{m}"} for m in mentions or []
        ]
        payload: dict[str, Any] = {
            "conversationId": conversation_id,
            "atUsers": at_users,
            "chatbotCorpId": CORP_ID,
            "chatbotUserId": BOT_USER_ID,
            "msgId": msg_id or f"msg{uuid.uuid4().hex}",
            "senderNick": nick,
            "isAdmin": False,
            "senderStaffId": staff_id,
            "sessionWebhookExpiredTime": now_ms + webhook_ttl_s * 1000,
            "createAt": now_ms,
            "senderCorpId": CORP_ID,
            "conversationType": conversation_type,
            "senderId": f"$:LWCP_v1:${staff_id}",
            "sessionWebhook": self.open_session(conversation_id),
            "robotCode": ROBOT_CODE,
            "msgtype": msgtype,
            "isInAtList": True,
            "senderPlatform": "Android",
            "senderUnionId": union_id or f"union-{staff_id}",
            "conversationTitle": conversation_id,
        }
        if msgtype == "text":
            payload["text"] = {"content": " " + text}
        else:
            payload["content"] = content or {}
        if self.faults.omit_staff_id:
            for key in ("senderStaffId", "robotCode", "chatbotCorpId"):
                payload.pop(key)
        return payload

    def open_session(self, conversation_id: str) -> str:
        """A new session webhook into this conversation, as each incoming message carries."""
        session = uuid.uuid4().hex
        self._sessions[session] = conversation_id
        return f"{self.base_url}/robot/sendBySession?session={session}"

    async def deliver(self, payload: dict[str, Any]) -> str:
        """Push a bot message to one connected client, chosen at random (as DingTalk does)."""
        frame = callback_frame(BOT_TOPIC, f"frame-{next(self._ids)}-{uuid.uuid4().hex[:8]}", payload)
        if payload.get("conversationId") and payload.get("msgtype") == "text":
            self.history[payload["conversationId"]].append(
                {
                    "from": payload.get("senderStaffId") or payload.get("senderUnionId"),
                    "nick": payload.get("senderNick"),
                    "text": payload["text"]["content"],
                    "msg_id": payload["msgId"],
                }
            )
        await self._dispatch(frame)
        await self._notify()  # the history changed
        return str(payload["msgId"])

    async def _dispatch(self, frame: dict[str, Any]) -> None:
        live = [c for c in self.connections.values() if not c.ws.closed and c.id not in self.faults.zombies]
        if not live:
            self._pending.append(frame)
            return
        await self._push(self.rng.choice(live), frame)

    async def _push(self, conn: _Connection, frame: dict[str, Any]) -> None:
        message_id = frame["headers"]["messageId"]
        conn.unacked[message_id] = frame
        self._pushed_at[message_id] = time.monotonic()
        data = json.loads(frame["data"]) if frame["type"] == "CALLBACK" else {}
        if data.get("msgId"):
            self.delivered[data["msgId"]] += 1
        frame = {**frame, "headers": {**frame["headers"], "connectionId": conn.id}}
        try:
            await conn.ws.send_str(json.dumps(frame, ensure_ascii=False))
        except (ConnectionResetError, RuntimeError):
            return  # the socket is going away; its unacked frames move on when it closes
        if self.faults.redeliver_after_s is not None:
            self._schedule_redelivery(frame, self.faults.redeliver_after_s, conn, message_id)

    def _schedule_redelivery(
        self, frame: dict[str, Any], delay: float, conn: _Connection | None = None, message_id: str | None = None
    ) -> None:
        def fire() -> None:
            self._timers.discard(handle)
            if conn is not None and message_id not in conn.unacked:
                return
            if conn is not None:
                conn.unacked.pop(message_id or "", None)
            self._spawn(self._dispatch(frame))

        handle = asyncio.get_running_loop().call_later(delay, fire)
        self._timers.add(handle)

    async def _keepalive(self, conn: _Connection) -> None:
        while self.keepalive_s and not conn.ws.closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), timeout=self.keepalive_s)
            if self._closing.is_set() or conn.ws.closed:
                return
            if conn.id not in self.faults.zombies:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await conn.ws.send_str(json.dumps(self._ping_frame()))

    def _ping_frame(self) -> dict[str, Any]:
        return {
            "specVersion": "1.0",
            "type": "SYSTEM",
            "headers": {
                "topic": "ping",
                "messageId": f"ping-{next(self._ids)}",
                "contentType": "application/json",
                "time": str(int(time.time() * 1000)),
            },
            "data": json.dumps({"opaque": uuid.uuid4().hex}),
        }

    async def ping_all(self) -> None:
        for conn in [c for c in self.connections.values() if c.id not in self.faults.zombies]:
            await conn.ws.send_str(json.dumps(self._ping_frame()))

    async def disconnect_all(self, close_after_s: float = 0.2) -> None:
        """The rebalancing notice: a `disconnect` frame, then the socket closes a little later;
        frames pushed meanwhile still reach the old socket."""
        for conn in list(self.connections.values()):
            frame = {
                "specVersion": "1.0",
                "type": "SYSTEM",
                "headers": {
                    "topic": "disconnect",
                    "messageId": f"disc-{next(self._ids)}",
                    "contentType": "application/json",
                    "time": str(int(time.time() * 1000)),
                },
                "data": json.dumps({"reason": "rebalance"}),
            }
            await conn.ws.send_str(json.dumps(frame))
            handle = asyncio.get_running_loop().call_later(close_after_s, self._close_soon, conn.ws)
            self._timers.add(handle)

    async def drop_all(self) -> None:
        """Cut every socket at once (no disconnect notice)."""
        for conn in list(self.connections.values()):
            await conn.ws.close(code=1011)

    def _close_soon(self, ws: web.WebSocketResponse) -> None:
        self._spawn(ws.close())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- waiting without sleeping ---

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), timeout)

    def reset(self) -> None:
        """Forget every conversation and send (the sandbox's 重置沙盒); connections, tokens and
        faults stay, as a fresh DingTalk group would not log the bot out."""
        self.history.clear()
        self.sent.clear()
        self.notices.forget()
        self.delivered.clear()
        self.acks.clear()
        self.cards.cards.clear()

    def close(self) -> None:
        for handle in self._timers:
            handle.cancel()
        self._closing.set()  # the requests held unanswered are let go


def _from_sample(body: dict[str, Any]) -> dict[str, Any]:
    try:
        param = json.loads(body.get("msgParam") or "{}")
    except ValueError:
        param = {}
    return {"markdown": {"title": param.get("title", ""), "text": param.get("text") or param.get("content", "")}}


def _title_text(body: dict[str, Any]) -> tuple[str, str]:
    if "markdown" in body:
        return str(body["markdown"].get("title", "")), str(body["markdown"].get("text", ""))
    if "text" in body:
        return "", str(body["text"].get("content", ""))
    return "", json.dumps(body, ensure_ascii=False)
