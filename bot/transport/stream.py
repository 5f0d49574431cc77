"""Stream mode on the official SDK's client, frame and handler types, with its pitfalls fixed
here: HTTP and websockets through aiohttp (nothing blocks the event loop), reconnect with
exponential backoff and jitter, a warm reconnect on the `disconnect` frame, a heartbeat
watchdog, bounded and tracked per-frame tasks, a clean stop, and no look-up of the host's
address on the internet."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import urllib.parse
from typing import Any, TypeAlias

import aiohttp
from dingtalk_stream import (
    AckMessage,
    CallbackHandler,
    CallbackMessage,
    Credential,
    DingTalkStreamClient,
    EventHandler,
    EventMessage,
)
from dingtalk_stream.frames import Headers, SystemMessage

from bot.transport.cards import CARD_TOPIC
from bot.transport.payload import BOT_TOPIC, BadPayload, decode, to_incoming
from bot.transport.pipeline import Pipeline
from models.db import outage

log = logging.getLogger(__name__)


class BotMessageHandler(CallbackHandler):
    """Makes the message durable, then lets the SDK acknowledge it; processing comes later."""

    def __init__(self, pipeline: Pipeline) -> None:
        super().__init__()
        self.pipeline = pipeline

    async def process(self, message: CallbackMessage) -> tuple[int, Any]:
        try:
            incoming = to_incoming(message.data)
        except BadPayload as e:
            log.warning("rejected bot message frame %r: %s", message.headers.message_id, e)
            return AckMessage.STATUS_BAD_REQUEST, None
        await self.pipeline.accept(incoming)  # raises when it could not be stored: no ack then
        return AckMessage.STATUS_OK, None


Frame: TypeAlias = SystemMessage | CallbackMessage | EventMessage
_FRAME_TYPES: dict[str, type[SystemMessage] | type[CallbackMessage] | type[EventMessage]] = {
    SystemMessage.TYPE: SystemMessage,
    CallbackMessage.TYPE: CallbackMessage,
    EventMessage.TYPE: EventMessage,
}


def parse_frame(frame: dict[str, Any]) -> Frame:
    """A decoded frame → the SDK's message, or BadPayload. The SDK's from_dict raises whatever
    a field's type makes it raise (int(1e400) is an OverflowError, a deep `data` a
    RecursionError, a `headers` list an AttributeError): any of it is a malformed frame, never
    a failed task (unacknowledged, it would come back forever) or a dead reader."""
    cls = _FRAME_TYPES.get(frame.get("type"))  # type: ignore[arg-type]
    if cls is None:
        cls = CallbackMessage  # as before: what is not SYSTEM or EVENT is read as a callback
    try:
        return cls.from_dict(frame)
    except Exception as e:
        raise BadPayload(f"malformed {cls.TYPE.lower()} frame ({type(e).__name__})") from None


# A frame larger than this closes the socket unread and unacknowledged, so the gateway sends it
# again, to this connection or the next, for ever: the limit is far above any bot message
# (its text is cut to a bounded length in payload.py) so that such a frame is read and answered.
MAX_FRAME = 32 * 1024 * 1024
HEALTHY_S = 60.0  # a connection that lived this long had nothing wrong with it
# DingTalk's gateway sends a SYSTEM ping frame every 20–30 s on a live connection
# (soimy/openclaw-channel-dingtalk#308); a connection that answers websocket pings but has
# carried no frame at all, not even those, for six of them has been given up on by the gateway
# (a "zombie": its pushes go elsewhere or nowhere) and is replaced. Counting every frame keeps a
# quiet but live connection (no messages for hours) from being replaced (#336 there).
IDLE_S = 180.0


def _backoff_s(attempt: int, rng: random.Random, cap: float) -> float:
    return rng.uniform(0.5, 1.0) * min(cap, 0.5 * 2**attempt)


class CredentialsRefused(Exception):
    """The gateway refused the app's ClientID/ClientSecret."""


class StreamClient(DingTalkStreamClient):
    def __init__(
        self,
        credential: Credential,
        endpoint: str,
        http: aiohttp.ClientSession,
        handler: BotMessageHandler,
        *,
        heartbeat_s: float = 30,
        max_in_flight: int = 256,
        max_backlog: int = 10_000,
        backoff_cap_s: float = 60,
        idle_s: float | None = IDLE_S,
        rng: random.Random | None = None,
        events: EventHandler | None = None,
        cards: CallbackHandler | None = None,
    ) -> None:
        super().__init__(credential, logger=logging.getLogger("dingtalk_stream.client"))
        # The SDK reads DINGTALK_OPENAPI_ENDPOINT once at import; ours is per client.
        self.endpoint = endpoint.rstrip("/")
        self.http = http
        self.heartbeat_s = heartbeat_s
        self.backoff_cap_s = backoff_cap_s
        self.idle_s = idle_s  # None: no watchdog
        self.rng = rng or random.Random()
        self.register_callback_handler(BOT_TOPIC, handler)
        if cards is not None:  # interactive cards' button presses (bot.transport.cards)
            self.register_callback_handler(CARD_TOPIC, cards)
        if events is not None:  # DingTalk's EVENT frames (contact changes: bot.contacts.events)
            self.register_all_event_handler(events)
        self._slots = asyncio.Semaphore(max_in_flight)
        self.max_backlog = max_backlog  # frames read and not yet answered, beyond which reading pauses
        self._room = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._sockets: set[aiohttp.ClientWebSocketResponse] = set()
        self._stopping = asyncio.Event()
        self.connections_opened = 0
        self.frames_received = 0  # callback frames read, on every connection
        self.backoff_attempts: list[int] = []  # the backoff step taken after each dropped connection
        self.idle_replaced = 0  # connections replaced by the watchdog
        self._opened = asyncio.Event()  # set (and renewed) each time a connection opens

    @property
    def connected(self) -> bool:
        """A socket is open and read (during a warm reconnect, the old one still counts)."""
        return bool(self._sockets) and not self._stopping.is_set()

    def get_host_ip(self) -> str:
        return "127.0.0.1"  # the SDK would open a socket toward 8.8.8.8 to learn this

    async def open_connection_async(self) -> dict[str, Any]:
        topics = [{"type": "CALLBACK", "topic": t} for t in self.callback_handler_map]
        if self._is_event_required:  # as the SDK subscribes: every event type, routed by eventType
            topics.insert(0, {"type": "EVENT", "topic": "*"})
        body = {
            "clientId": self.credential.client_id,
            "clientSecret": self.credential.client_secret,
            "subscriptions": topics,
            "ua": "liandong/dingtalk-stream",
            "localIp": self.get_host_ip(),
        }
        url = f"{self.endpoint}/v1.0/gateway/connections/open"
        async with self.http.post(url, json=body, timeout=aiohttp.ClientTimeout(total=10)) as resp:
            resp.raise_for_status()
            data = await resp.json(content_type=None)
        if not isinstance(data, dict) or not data.get("endpoint") or not data.get("ticket"):
            raise ValueError("gateway answered without endpoint/ticket")
        return data

    async def start(self) -> None:
        """Serve until stop(): connect, serve, reconnect (warm on `disconnect`)."""
        self.pre_start()
        attempt = 0
        while not self._stopping.is_set():
            try:
                ws = await self._connect()
            except aiohttp.ClientResponseError as e:
                # A wrong ClientID/Secret is answered 401 {"code":"authFailed","message":"鉴权失败"}
                # (dingtalk-stream users' reports, e.g. zfanswer/dify-on-dingtalk#28): retrying never
                # fixes it, so a bot that never connected stops and says so. One that has connected
                # before keeps trying: a gateway hiccup must not take a running service down.
                if e.status in (401, 403) and self.connections_opened == 0:
                    raise CredentialsRefused(e.status) from None
                attempt += 1
                log.warning("stream connect failed (HTTP %s)", e.status)
                await self._pause(attempt)
                continue
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as e:
                attempt += 1
                log.warning("stream connect failed (%s)", type(e).__name__)
                await self._pause(attempt)
                continue
            frames, opened_at = self.frames_received, time.monotonic()
            if await self._serve(ws):
                attempt = 0  # asked to move: the new connection opens at once
                continue
            # Dropped. A connection that worked (it delivered, or it lived a while) starts the backoff
            # over; only one that keeps failing at once backs off further and further.
            healthy = self.frames_received > frames or time.monotonic() - opened_at >= HEALTHY_S
            attempt = 1 if healthy else min(attempt + 1, 16)
            self.backoff_attempts.append(attempt)
            await self._pause(attempt)

    async def _pause(self, attempt: int) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=_backoff_s(attempt, self.rng, self.backoff_cap_s))

    async def _connect(self) -> aiohttp.ClientWebSocketResponse:
        conn = await self.open_connection_async()
        uri = f"{conn['endpoint']}?ticket={urllib.parse.quote_plus(str(conn['ticket']))}"
        # The heartbeat is the watchdog: no pong within half of it and aiohttp closes the socket.
        ws = await self.http.ws_connect(uri, heartbeat=self.heartbeat_s, max_msg_size=MAX_FRAME)
        self.connections_opened += 1
        self._opened.set()  # for a socket being replaced: its successor is open
        self._opened = asyncio.Event()
        self._sockets.add(ws)
        if self._stopping.is_set():  # stop() ran while this socket was opening: it must not linger
            self._sockets.discard(ws)
            await ws.close()
        return ws

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> bool:
        """Read frames until the socket closes (False) or the server asks us to move (True:
        the old socket keeps being read in the background while the caller opens a new one)."""
        moving = asyncio.Event()
        seen = [time.monotonic()]  # when this socket last carried a frame
        reader = asyncio.create_task(self._read(ws, moving, seen))
        waiter = asyncio.create_task(moving.wait())
        idle = asyncio.create_task(self._watch(moving, seen)) if self.idle_s else None
        await asyncio.wait({reader, waiter}, return_when=asyncio.FIRST_COMPLETED)
        replaced = idle is not None and idle.done() and idle.result()
        if idle is not None:
            idle.cancel()
        if reader.done():
            waiter.cancel()
            return False
        self._track(reader)  # the old socket drains in the background until the server closes it
        if replaced:  # a zombie never closes by itself: closed once its successor is open
            self._track(asyncio.create_task(self._close_when_replaced(ws, self._opened)))
        return True

    async def _watch(self, moving: asyncio.Event, seen: list[float]) -> bool:
        """True (and a move asked for) once the socket has carried no frame for idle_s."""
        assert self.idle_s is not None
        while not moving.is_set():
            quiet = time.monotonic() - seen[0]
            if quiet >= self.idle_s:
                log.warning("stream connection carried no frame for %.0f s; replacing it", quiet)
                self.idle_replaced += 1
                moving.set()
                return True
            with contextlib.suppress(TimeoutError):  # a timer; stop() ends it at once
                await asyncio.wait_for(self._stopping.wait(), timeout=self.idle_s - quiet)
            if self._stopping.is_set():
                return False
        return False

    async def _close_when_replaced(self, ws: aiohttp.ClientWebSocketResponse, opened: asyncio.Event) -> None:
        """Close the replaced socket once the next connection is open (or after 10 s, or at
        stop): a frame it held unacknowledged comes again on another (the inbox drops repeats)."""
        waits = {asyncio.create_task(opened.wait()), asyncio.create_task(self._stopping.wait())}
        _done, pending = await asyncio.wait(waits, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await ws.close()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, moving: asyncio.Event, seen: list[float]) -> None:
        try:
            async for raw in ws:
                if raw.type != aiohttp.WSMsgType.TEXT:
                    continue
                seen[0] = time.monotonic()
                try:
                    frame = decode(raw.data)
                    if not isinstance(frame, dict):
                        raise BadPayload("frame is not an object")
                except BadPayload:
                    log.warning("ignored a malformed frame (%d bytes)", len(raw.data))
                    continue
                if frame.get("type") == SystemMessage.TYPE:
                    await self._system(ws, frame, moving)
                    continue
                self.frames_received += 1
                # The reader never waits for the database (nor for a slot): a ping behind a
                # thousand frames the database cannot store yet is still answered at once. The
                # frames wait for a slot in their own tasks; only a backlog this deep stops reading.
                if len(self._tasks) >= self.max_backlog:
                    await self._room.wait()
                self._track(asyncio.create_task(self._in_slot(ws, frame)))
        finally:
            self._sockets.discard(ws)
            await ws.close()

    async def _in_slot(self, ws: aiohttp.ClientWebSocketResponse, frame: dict[str, Any]) -> None:
        async with self._slots:
            await self._callback(ws, frame)

    def _track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        self._room.clear()

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if len(self._tasks) < self.max_backlog:
                self._room.set()
            if not t.cancelled() and t.exception():
                log.error("frame task failed", exc_info=t.exception())

        task.add_done_callback(done)

    async def _system(self, ws: aiohttp.ClientWebSocketResponse, frame: dict[str, Any], moving: asyncio.Event) -> None:
        try:
            msg = parse_frame(frame)
        except BadPayload as e:
            log.warning("ignored a %s", e)
            return
        assert isinstance(msg, SystemMessage)
        if msg.headers.topic == SystemMessage.TOPIC_DISCONNECT:
            log.info("server asked this connection to move; opening a new one first")
            moving.set()
            return
        ack = await self.system_handler.raw_process(msg)  # ping: echo its data
        await self._send_ack(ws, ack)

    async def _callback(self, ws: aiohttp.ClientWebSocketResponse, frame: dict[str, Any]) -> None:
        if frame.get("type") == EventMessage.TYPE:
            await self._event(ws, frame)
            return
        try:
            msg = parse_frame(frame)
        except BadPayload as e:
            # Answered when it names itself, so that it is not delivered again and again.
            log.warning("refused a %s", e)
            await self._refuse(ws, frame)
            return
        assert isinstance(msg, CallbackMessage)
        handler = self.callback_handler_map.get(msg.headers.topic)
        if handler is None:
            ack = AckMessage()
            ack.code, ack.message = AckMessage.STATUS_NOT_IMPLEMENT, "unknown topic"
            ack.headers.message_id = msg.headers.message_id
            ack.headers.content_type = Headers.CONTENT_TYPE_APPLICATION_JSON
        else:
            try:
                ack = await handler.raw_process(msg)
            except Exception as e:
                # A database outage is said once, by the pipeline's state change, not per frame.
                if outage(e) is None:
                    log.exception("frame %r not stored; it will be delivered again", msg.headers.message_id)
                return
        await self._send_ack(ws, ack)

    async def _event(self, ws: aiohttp.ClientWebSocketResponse, frame: dict[str, Any]) -> None:
        """An EVENT frame: acknowledged once the handler stored it, never when it failed (then
        DingTalk delivers it again)."""
        try:
            msg = parse_frame(frame)
        except BadPayload as e:
            log.warning("refused a %s", e)
            await self._refuse(ws, frame)
            return
        assert isinstance(msg, EventMessage)
        try:
            ack = await self.event_handler.raw_process(msg)
        except Exception:
            log.exception("event %r not stored; it will be delivered again", msg.headers.event_id)
            return
        await self._send_ack(ws, ack)

    @classmethod
    async def _refuse(cls, ws: aiohttp.ClientWebSocketResponse, frame: dict[str, Any]) -> None:
        headers = frame.get("headers")
        message_id = headers.get("messageId") if isinstance(headers, dict) else None
        if not isinstance(message_id, str) or not message_id:
            return
        ack = AckMessage()
        ack.code, ack.message = AckMessage.STATUS_BAD_REQUEST, "malformed"
        ack.headers.message_id = message_id
        ack.headers.content_type = Headers.CONTENT_TYPE_APPLICATION_JSON
        await cls._send_ack(ws, ack)

    @staticmethod
    async def _send_ack(ws: aiohttp.ClientWebSocketResponse, ack: AckMessage) -> None:
        if ws.closed:
            return
        try:
            await ws.send_str(json.dumps(ack.to_dict()))
        except (aiohttp.ClientError, ConnectionResetError, RuntimeError):
            log.info("ack for %s not sent: socket closed", ack.headers.message_id)

    async def stop(self) -> None:
        """Stop taking frames, close the sockets, and let in-flight frames finish."""
        self._stopping.set()
        for ws in list(self._sockets):
            await ws.close()
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
