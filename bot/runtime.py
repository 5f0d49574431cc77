"""The running bot: the inbox pipeline, the outbox sender, the photo fetcher, and a receiver
(stream or HTTP callback). `stop()` is the clean shutdown: no new frames, in-flight ones
finished, the inbox processed, the outbox flushed."""

from __future__ import annotations

import asyncio
import errno
import logging
from dataclasses import dataclass
from datetime import timedelta

import aiohttp
from aiohttp import web
from dingtalk_stream import Credential

from bot.app import App
from bot.config import DEFAULT_ENDPOINT
from bot.contacts.events import contact_events
from bot.photos_store import PhotoStore
from bot.transport.cards import CardCallbackHandler, CardConfig
from bot.transport.dingtalk_api import Credentials, DingTalkApi
from bot.transport.http_callback import callback_app
from bot.transport.photos import PhotoFetcher
from bot.transport.pipeline import SWEEP_S, Pipeline
from bot.transport.sender import CLAIM_S, OutboxSender
from bot.transport.stream import IDLE_S, BotMessageHandler, CredentialsRefused, StreamClient
from bot.web import create_web_app, start_site
from bot.web.health import Receiver
from models.clock import Clock, SystemClock
from schedules.leader import leader_lock
from schedules.runner import SchedulerHandle
from schedules.runner import start as start_scheduler

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RuntimeOptions:
    endpoint: str = DEFAULT_ENDPOINT
    http_listen: tuple[str, int] | None = None  # HTTP callback mode instead of stream mode
    heartbeat_s: float = 30
    backoff_cap_s: float = 60
    idle_s: float | None = IDLE_S  # a stream connection that carries no frame this long is replaced
    scheduler: bool = True  # run the scheduled jobs (only the leader process actually runs them)
    web_listen: tuple[str, int] | None = None  # the dashboard and JSON API (bot.web)
    # Seconds a process holds a message or reply it took before any other process may take it
    # (it died); None: the defaults (inbox 60 s, outbox 30 s). The sweep runs at half of it.
    claim_s: float | None = None
    oapi_endpoint: str | None = None  # the older oapi host (work notifications); None: the settings'
    agent_id: str | None = None  # the app's AgentId for work notifications; None: the settings'


class StartupError(Exception):
    """The bot cannot run as configured: said in one line, the process exits non-zero."""


class Runtime:
    def __init__(self, app: App, options: RuntimeOptions, clock: Clock | None = None) -> None:
        settings = app.settings
        if not (settings.client_id and settings.client_secret):
            raise ValueError("需要 DINGTALK_CLIENT_ID 和 DINGTALK_CLIENT_SECRET")
        self.app = app
        self.options = options
        self.clock = clock or SystemClock()
        self.credentials = Credentials(settings.client_id, settings.client_secret, settings.robot_code or "")
        self.http: aiohttp.ClientSession | None = None
        self.pipeline: Pipeline | None = None
        self.sender: OutboxSender | None = None
        self.photos: PhotoFetcher | None = None
        self.stream: StreamClient | None = None
        self._stream_task: asyncio.Task[None] | None = None
        self._site_runner: web.AppRunner | None = None
        self.scheduler: SchedulerHandle | None = None
        self._web_runner: web.AppRunner | None = None
        self._failed: asyncio.Future[StartupError] | None = None

    @property
    def failed(self) -> asyncio.Future[StartupError]:
        """Resolved when the bot cannot go on as configured (DingTalk refuses its credentials)."""
        if self._failed is None:
            self._failed = asyncio.get_running_loop().create_future()
        return self._failed

    def _wake_sender(self) -> None:
        if self.sender is not None:
            self.sender.wake()
        if self.photos is not None:  # a message may have queued pictures to fetch
            self.photos.wake()

    async def start(self) -> None:
        self.http = aiohttp.ClientSession()
        oapi = self.options.oapi_endpoint or self.app.settings.oapi_endpoint
        api = DingTalkApi(self.http, self.options.endpoint, self.credentials, oapi_endpoint=oapi)
        secrets = {name: self.app.settings.robot_secrets.get(name, "") for name in self.app.org.secret_envs}
        claim_s = self.options.claim_s
        sweep_s = SWEEP_S
        if claim_s is not None:
            self.app.dispatcher.lease = timedelta(seconds=claim_s)
            sweep_s = min(SWEEP_S, claim_s / 2)
        self.pipeline = Pipeline(self.app.dispatcher, on_processed=self._wake_sender, sweep_s=sweep_s)
        self.sender = OutboxSender(
            self.app.engine,
            api,
            self.pipeline.run_db,
            self.clock,
            self.app.org.robots,
            secrets,
            claim_s=claim_s if claim_s is not None else CLAIM_S,
            public_url=self.app.settings.public_url,
            database=self.pipeline.database,
            agent_id=self.options.agent_id or self.app.settings.agent_id,
            cards=self._card_config(),
        )
        store = PhotoStore(self.app.settings.photos_dir)
        self.photos = PhotoFetcher(self.app.engine, api, store, self.pipeline.run_db, self.clock)
        await self.pipeline.start()
        self.sender.start()
        self.photos.start()
        if self.options.scheduler:
            self.scheduler = await start_scheduler(
                self.app.job_runner(self.clock),
                lock=leader_lock(self.app.settings.database_url),
                on_written=self.sender.wake,
            )
        if self.options.web_listen:
            await self._start_web(*self.options.web_listen)
        if self.options.http_listen:
            host, port = self.options.http_listen
            self._site_runner = web.AppRunner(callback_app(self.pipeline, self.credentials.client_secret))
            await self._site_runner.setup()
            try:
                await web.TCPSite(self._site_runner, host, port).start()
            except OSError as e:  # unlike the dashboard's, this port is the service itself
                why = "端口已被占用" if e.errno == errno.EADDRINUSE else (e.strerror or str(e))
                raise StartupError(f"无法监听 {host}:{port}: {why}") from None
            log.info("HTTP callback mode on %s:%s", host, port)
            return
        credential = Credential(self.credentials.client_id, self.credentials.client_secret)
        self.stream = StreamClient(
            credential,
            self.options.endpoint,
            self.http,
            BotMessageHandler(self.pipeline),
            heartbeat_s=self.options.heartbeat_s,
            backoff_cap_s=self.options.backoff_cap_s,
            idle_s=self.options.idle_s,
            events=contact_events(self.app, self.http, api, self.clock, self.pipeline.run_db),
            cards=CardCallbackHandler(self.pipeline, self.app.engine, self.clock) if self._card_config() else None,
        )
        self._stream_task = asyncio.create_task(self.stream.start(), name="liandong-stream")
        self._stream_task.add_done_callback(self._stream_ended)

    def _card_config(self) -> CardConfig | None:
        settings = self.app.settings
        if not settings.card_template_id:
            return None
        robot = settings.robot_code or self.credentials.client_id
        return CardConfig(settings.card_template_id, robot, settings.public_url)

    def _stream_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or not isinstance(task.exception(), CredentialsRefused) or self.failed.done():
            return
        self.failed.set_result(
            StartupError("钉钉拒绝了应用凭据 (authFailed): 请核对 DINGTALK_CLIENT_ID 与 DINGTALK_CLIENT_SECRET")
        )

    async def _start_web(self, host: str, port: int) -> None:
        # The chat is the service; a dashboard port already taken must not keep the bot down.
        try:
            web_app = create_web_app(
                self.app,
                self.clock,
                receiver=self.receiver,
                writes=lambda: self.pipeline.database if self.pipeline else None,
            )
            self._web_runner = await start_site(web_app, host, port)
        except OSError as e:
            log.error("dashboard not started: cannot listen on %s:%s (%s)", host, port, e.strerror or e)
            return
        log.info("dashboard and API on %s/dashboard", self.web_url)

    def receiver(self) -> Receiver:
        """This process's receiver, as /healthz reports it."""
        if self.options.http_listen:
            return Receiver("http_callback", bool(self._site_runner and self._site_runner.addresses))
        return Receiver("stream", self.stream is not None and self.stream.connected)

    @property
    def web_url(self) -> str | None:
        """Where the dashboard listens (the real port when 0 was asked for)."""
        if not self._web_runner or not self._web_runner.addresses:
            return None
        host, port = self._web_runner.addresses[0][:2]
        return f"http://{host}:{port}"

    async def stop(self) -> None:
        if self.scheduler:
            await self.scheduler.stop()
        if self.stream:
            await self.stream.stop()
        if self._stream_task:
            await asyncio.gather(self._stream_task, return_exceptions=True)
        if self._site_runner:
            await self._site_runner.cleanup()
        if self._web_runner:
            await self._web_runner.cleanup()
        if self.pipeline:
            await self.pipeline.drain()
        if self.photos:
            await self.photos.stop()
        if self.sender:
            await self.sender.flush()
            await self.sender.stop()
        if self.pipeline:
            await self.pipeline.stop()
        if self.http:
            await self.http.close()
