"""The outbox worker: claims due rows, sends each through the right channel, and records the
outcome. Session webhook while valid → OpenAPI; a group with a custom robot → the robot.
Retries with exponential backoff and jitter; a permanent failure is recorded, never dropped.

At most once, across a crash: each outcome is committed as soon as it is known, before the
next send of its conversation starts (outcomes that arrive together share one commit), so a
SIGKILL leaves at most one send per conversation task unrecorded; that one goes out again after
the claim lapses, except through a custom robot, whose `msgUuid` (derived from the row's key)
lets DingTalk drop the copy. The claim is a lease the pass renews while it holds rows, so a
live sender keeps them however slow DingTalk is, and a dead one's lapse within `claim_s`."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import uuid
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Engine, Row, and_, bindparam, exists, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from bot.org import RobotConfig
from bot.transport.cards import CardConfig, send_card, send_card_update
from bot.transport.db_state import DatabaseState
from bot.transport.dingtalk_api import DingTalkApi, SendError, Undelivered, markdown_body
from bot.transport.todos import send_todo
from bot.transport.worker import PollingWorker, RunDb, due
from models.audience import plain
from models.clock import Clock
from models.db import unit_of_work
from models.markdown import render_markdown
from models.outbox import mentions
from models.queries import people
from models.tables import OutboxMessage, RateLimit

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_ATTEMPTS = 8
IDLE_POLL_S = 2.0  # how long a row written by another process waits at most to be seen
# Sends under way at once, across conversations (each conversation sends one at a time, in order).
# A slow webhook holds its slot while DingTalk answers late: with 5% of posts 2 s late, the
# others keep hundreds a second only with dozens of slots (bench.slow_webhooks). aiohttp pools
# 100 connections.
CONCURRENCY = 64
CLAIM_S = 30  # a sender that dies mid-pass lets another take its rows this long after its last renewal
WEBHOOK_MARGIN_S = 30  # do not start a session-webhook send that would expire under way
ROBOT_PER_MINUTE = 20
QUOTA_PAUSE = timedelta(hours=1)  # the monthly OpenAPI quota is spent: try the channel again after this
RECORD_RETRY_FIRST_S = 0.25  # an outcome the database could not take is recorded again this soon …
RECORD_RETRY_CAP_S = 5.0  # … then twice as late, up to this
MSG_UUID_NAMESPACE = uuid.UUID("6f1c1d0e-5b7a-4c1e-9a44-1d0a3e7b2c55")


@dataclass(frozen=True)
class Delivery:
    id: int
    kind: str
    conversation_id: str | None
    user_ids: list[str]
    at_user_ids: list[str]
    title: str
    text: str  # for a channel that can @: @name turned into @staffId, as DingTalk renders mentions
    session_webhook: str | None
    webhook_expires_at: datetime | None
    attempts: int
    plain_text: str = ""  # for a channel that cannot @ (the OpenAPI): the names without @
    key: str = ""  # the row's idempotency key (a custom robot's msgUuid derives from it)


@dataclass(frozen=True)
class Outcome:
    row_id: int
    kind: str  # sent | failed | defer | release
    channel: str | None = None
    error: SendError | None = None
    at: datetime | None = None
    user_ids: list[str] | None = None  # a one-to-one row that reached some: whom a retry is for
    note: str | None = None  # sent, but not to everyone (batchSend's invalidStaffIdList)


class PartlySent(SendError):
    """batchSend reached some of the row's users and throttled the others: only those are
    tried again (the others must not hear it twice)."""

    def __init__(self, reason: str, user_ids: list[str]) -> None:
        super().__init__(reason, retryable=True)
        self.user_ids = user_ids


class Delivered(Exception):
    """Sent, with a remark worth keeping on the row (some users DingTalk does not know)."""

    def __init__(self, channel: str, note: str) -> None:
        super().__init__(note)
        self.channel = channel
        self.note = note


def msg_uuid(key: str) -> str:
    """The custom robot's idempotency key for an outbox row: the same on every resend of that
    row, from any process (a UUID of the row's key, which names no person)."""
    return str(uuid.uuid5(MSG_UUID_NAMESPACE, key))


@dataclass
class RobotLimiter:
    """20 messages a minute per custom robot: over it DingTalk blocks the robot for 10 minutes.
    The rule on one window of send times; `SharedRobotLimiter` keeps the windows in the
    database, so that all the processes together keep to it."""

    per_minute: int = ROBOT_PER_MINUTE
    sent: dict[str, deque[datetime]] = field(default_factory=lambda: defaultdict(deque))

    def wait(self, webhook: str, now: datetime) -> float:
        return take_slot(self.sent[webhook], now, self.per_minute)


def take_slot(window: deque[datetime], now: datetime, per_minute: int = ROBOT_PER_MINUTE) -> float:
    """Drop the sends older than a minute; if the minute has room, take it (0.0), else the
    seconds until it has."""
    while window and now - window[0] >= timedelta(minutes=1):
        window.popleft()
    if len(window) < per_minute:
        window.append(now)
        return 0.0
    return (window[0] + timedelta(minutes=1) - now).total_seconds()


class SharedRobotLimiter:
    """The robot limit across processes: one `rate_limits` row per robot (keyed by a digest of
    its webhook, which carries the access token), locked while a send slot is taken (FOR UPDATE
    on PostgreSQL; SQLite's unit of work holds the write lock), plus the block DingTalk imposed,
    so that no process sends into it. Blocking calls: run them on the database thread."""

    def __init__(self, engine: Engine, per_minute: int = ROBOT_PER_MINUTE) -> None:
        self.engine = engine
        self.per_minute = per_minute

    @staticmethod
    def key(webhook: str) -> str:
        return "robot:" + hashlib.sha256(webhook.encode()).hexdigest()[:32]

    def wait(self, webhook: str, now: datetime) -> float:
        key = self.key(webhook)
        with unit_of_work(self.engine) as session:
            _insert_unless_exists(session, key)
            row = session.execute(select(LIMITS).where(LIMITS.c.key == key).with_for_update()).one()
            if row.blocked_until is not None and row.blocked_until > now:
                return (row.blocked_until - now).total_seconds()
            window = deque(sorted(datetime.fromisoformat(t) for t in row.sent))
            wait = take_slot(window, now, self.per_minute)
            if wait == 0.0:
                sent = [t.isoformat() for t in window]
                session.execute(update(LIMITS).where(LIMITS.c.key == key).values(sent=sent))
            return wait

    def blocked(self, webhook: str, until: datetime) -> None:
        """DingTalk said the robot is blocked until then: every process waits it out."""
        key = self.key(webhook)
        with unit_of_work(self.engine) as session:
            _insert_unless_exists(session, key)
            session.execute(update(LIMITS).where(LIMITS.c.key == key).values(blocked_until=until))


def _insert_unless_exists(session: Session, key: str) -> None:
    dialect = session.get_bind().dialect.name
    values: dict[str, Any] = {"key": key, "sent": [], "blocked_until": None}
    if dialect == "postgresql":
        session.execute(postgresql.insert(LIMITS).values(values).on_conflict_do_nothing())
    elif dialect == "sqlite":
        session.execute(sqlite.insert(LIMITS).values(values).on_conflict_do_nothing())
    elif session.execute(select(LIMITS.c.key).where(LIMITS.c.key == key)).first() is None:
        session.execute(insert(LIMITS).values(values))


def backoff_s(attempt: int, rng: random.Random) -> float:
    """Exponential with full jitter: 2, 4, 8 … s up to 10 minutes."""
    return rng.uniform(0.5, 1.0) * min(600.0, 2.0**attempt)


class OutboxSender(PollingWorker):
    name = "sender"
    # Rows another process wrote (a CLI job) go out within this: a poll costs one claim UPDATE
    # and one MIN() query on the outbox's status index (bench/idle_poll.py measures it).
    idle_poll_s = IDLE_POLL_S

    def __init__(
        self,
        engine: Engine,
        api: DingTalkApi,
        run_db: RunDb,
        clock: Clock,
        robots: dict[str, RobotConfig] | None = None,
        secrets: dict[str, str] | None = None,
        concurrency: int = CONCURRENCY,
        rng: random.Random | None = None,
        claim_s: float = CLAIM_S,
        public_url: str | None = None,
        database: DatabaseState | None = None,
        agent_id: str | None = None,
        cards: CardConfig | None = None,
    ) -> None:
        super().__init__(run_db)
        self.engine = engine
        self.api = api
        self.clock = clock
        self.robots = robots or {}
        self.secrets = secrets or {}
        self.limit = asyncio.Semaphore(concurrency)
        self.rng = rng or random.Random()
        self.claim_s = claim_s
        self.public_url = public_url  # LIANDONG_PUBLIC_URL: a to-do links to its case page there
        self.agent_id = agent_id  # DINGTALK_AGENT_ID: None, and work notifications go one to one
        self.cards = cards  # DINGTALK_CARD_TEMPLATE_ID set: rows of kind "card" go out as cards
        # The kinds not sent as chat messages, each by its own handler (chat kinds: _chat).
        self._handlers: dict[str, Callable[[Delivery, datetime], Awaitable[str | datetime]]] = {
            "todo": self._todo,
            "work": self._work,
            "ding": self._ding,
            "card": self._card,
            "card_update": self._card_update,
        }
        self.limiter = SharedRobotLimiter(engine)
        self.openapi_paused_until: datetime | None = None
        self._waiting: list[tuple[list[Outcome], asyncio.Future[None]]] = []
        self._committing = False
        self.database = database or DatabaseState()  # the pipeline's, so that an outage is said once
        self._held: set[int] = set()  # rows claimed and not yet recorded, across the passes under way
        self._running: set[asyncio.Task[bool]] = set()  # one per conversation being sent
        self._sending: dict[asyncio.Task[bool], list[Delivery]] = {}  # each task's rows
        self._renewal: asyncio.Task[None] | None = None
        self._streaming = False  # the running loop is this sender's: passes do not wait for their sends

    async def send_due(self) -> int:
        """One pass: claim what is due, send it (conversations in parallel, each in order), and
        record every outcome as soon as it is known; returns once those sends are over."""
        claimed = (await self.run_pass())[0]
        await self._settle()
        return claimed

    async def _loop(self) -> None:
        # While the loop runs, a pass hands its conversations to tasks of their own and returns:
        # the next pass claims the other conversations' new rows while a slow webhook is still
        # answering one, instead of the whole pass waiting for its slowest send.
        self._streaming = True
        try:
            await super()._loop()
        finally:
            self._streaming = False

    async def _pass(self) -> tuple[int, bool]:
        """One pass: how many rows it claimed, and whether more may be due now (a full claim, a
        row released or retried). Called outside the running loop, it also waits for its sends."""
        while len(self._held) >= IN_HAND and self._running:  # a bound on the rows held at once
            await asyncio.wait(self._running, return_when=asyncio.FIRST_COMPLETED)
        try:
            batch = await self.run_db(self._claim)
        except Exception as e:
            if not self.database.failed(e):
                raise
            return 0, False  # nothing claimed; the next pass (a wake-up, or the poll) tries again
        if not batch:
            return 0, False
        # A lease that lapsed while an outage kept this process from renewing it lets our own
        # claim take back rows still in hand (or behind them in their conversation): those stay
        # with the task sending them, and are never sent a second time from here.
        busy = {_conversation(d) for t in self._running for d in self._sending.get(t, ())}
        again = [d for d in batch if d.id in self._held or _conversation(d) in busy]
        if again:
            batch = [d for d in batch if d not in again]
            await self._commit([Outcome(d.id, "release") for d in again if d.id not in self._held])
        if not batch:
            return len(again), False
        by_conversation: dict[str, list[Delivery]] = defaultdict(list)
        for d in batch:
            by_conversation[_conversation(d)].append(d)
        self._held.update(d.id for d in batch)
        if self._renewal is None or self._renewal.done():
            self._renewal = asyncio.create_task(self._renew_while(self._held), name="liandong-sender-lease")
        tasks = []
        for items in by_conversation.values():
            task = asyncio.create_task(self._send_in_order(items, self._held))
            tasks.append(task)
            self._sending[task] = items
            self._running.add(task)
            task.add_done_callback(self._conversation_done)
        full = len(batch) >= CLAIM_LIMIT
        if self._streaming:
            return len(batch), full
        return len(batch), full or not all(await self._settle(tasks))

    def _conversation_done(self, task: asyncio.Task[bool]) -> None:
        self._running.discard(task)
        self._sending.pop(task, None)
        if not task.cancelled() and task.exception() is not None and self._streaming:
            log.error("sending a conversation's rows failed", exc_info=task.exception())
        self.wake()  # its next rows, or others held behind it, may be due now

    async def _settle(self, tasks: list[asyncio.Task[bool]] | None = None) -> list[bool]:
        """Wait for these conversations' sends (all under way by default); the first failure is
        raised once all are over: none may go on sending unwatched. Cancelled (the process is
        going away), it cancels them: what they had not recorded is left to the lease."""
        pending = list(self._running) if tasks is None else tasks
        try:
            results = await asyncio.gather(*pending, return_exceptions=True)
        except asyncio.CancelledError:
            for task in pending:
                task.cancel()
            raise
        if not self._running and self._renewal is not None:
            self._renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewal
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return [bool(r) for r in results]

    async def stop(self) -> None:
        await super().stop()
        await self._settle()

    async def idle(self) -> None:
        while True:
            await super().idle()
            if not self._running:
                return
            await self._settle()

    async def flush(self, max_passes: int = 1000) -> None:
        """Send until nothing is due now (used at shutdown and by tests)."""
        for _ in range(max_passes):
            if not await self.send_due():
                return

    async def _send_in_order(self, items: list[Delivery], held: set[int]) -> bool:
        """Send one conversation's rows in order, each outcome committed before the next send
        starts; False when one was not sent (the rest wait for the next pass)."""
        for i, d in enumerate(items):
            async with self.limit:
                outcome = await self._send_one(d)
            if outcome.kind == "sent":
                await self._commit([outcome])
                held.discard(d.id)
                continue
            later = items[i + 1 :]
            await self._commit([outcome, *(Outcome(x.id, "release") for x in later)])
            held.difference_update([d.id, *(x.id for x in later)])
            return False
        return True

    async def _commit(self, outcomes: list[Outcome]) -> None:
        """Record these outcomes now. Outcomes that arrive while a commit is under way wait and
        share the next one (group commit): one transaction for several conversations, and still
        none of them sends again before its outcome is durable."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((outcomes, done))
        if not self._committing:
            self._committing = True
            try:
                while self._waiting:
                    group, self._waiting = self._waiting, []
                    try:
                        await self._record_durably([o for batch, _ in group for o in batch])
                    except Exception as e:  # every waiter hears of it: none may go on sending
                        for _, fut in group:
                            fut.set_exception(e)
                    else:
                        for _, fut in group:
                            fut.set_result(None)
            finally:
                self._committing = False
        await done

    async def _record_durably(self, outcomes: list[Outcome]) -> None:
        """Record outcomes, waiting out a database outage: these sends happened, and a row
        whose outcome is lost would go out again once its claim lapsed. Given up only when the
        sender is stopping (then the claim's lapse decides, as after a crash)."""
        wait = RECORD_RETRY_FIRST_S
        while True:
            try:
                await self.run_db(self._record, outcomes)
            except Exception as e:
                if self._stopping or not self.database.failed(e):
                    raise
                await asyncio.sleep(wait)  # the backoff, not a synchronisation wait
                wait = min(RECORD_RETRY_CAP_S, wait * 2)
                continue
            self.database.succeeded()
            return

    async def _renew_while(self, held: set[int]) -> None:
        """Keep the lease on the rows of this pass not yet recorded, a third of the claim time
        at a time, so that a slow DingTalk never lets another sender take a row we are sending."""
        while held:
            await asyncio.sleep(self.claim_s / 3)  # a lease period, not a synchronisation wait
            ids = list(held)
            if not ids:
                continue
            try:
                await self.run_db(self._renew, ids)
            except Exception as e:  # the rows are still being sent: renew at the next period
                if not self.database.failed(e):
                    log.exception("renewing the sender's claim failed")

    async def _send_one(self, d: Delivery) -> Outcome:
        now = self.clock.now()
        try:
            channel = await self._deliver(d, now)
        except Delivered as done:
            return Outcome(d.id, "sent", channel=done.channel, at=now, note=done.note)
        except PartlySent as e:
            return Outcome(d.id, "failed", error=e, at=now, user_ids=e.user_ids)
        except SendError as e:
            if e.quota:  # nothing lost: the row waits, uncounted, until the channel is tried again
                return Outcome(d.id, "defer", at=self._pause_openapi(now, e))
            return Outcome(d.id, "failed", error=e, at=now)
        except Exception as e:  # a bug must not lose the row: it is retried and visible
            log.exception("sending outbox row %s failed", d.id)
            return Outcome(d.id, "failed", error=SendError(type(e).__name__, retryable=True), at=now)
        if isinstance(channel, datetime):
            return Outcome(d.id, "defer", at=channel)
        return Outcome(d.id, "sent", channel=channel, at=now)

    def _pause_openapi(self, now: datetime, error: SendError) -> datetime:
        """The organisation's monthly OpenAPI quota is spent: stop calling it for a while, say so
        once, and keep every row it would have carried."""
        if self.openapi_paused_until is None or self.openapi_paused_until <= now:
            self.openapi_paused_until = now + QUOTA_PAUSE
            log.error(
                "DingTalk OpenAPI monthly call quota used up (%s): group and one-to-one sends paused "
                "until %s, replies kept pending; upgrade the DingTalk edition or wait for next month",
                error,
                self.openapi_paused_until.isoformat(timespec="minutes"),
            )
        return self.openapi_paused_until

    async def _deliver(self, d: Delivery, now: datetime) -> str | datetime:
        """Send; the channel used, or the time to try again when a robot's minute is full or the
        OpenAPI is paused."""
        handler = self._handlers.get(d.kind)
        if handler is not None:
            return await handler(d, now)
        return await self._chat(d, now)

    async def _card_update(self, d: Delivery, now: datetime) -> str | datetime:
        if self.cards is None:  # the template was unset since: the markdown already said it all
            return "none"
        return await send_card_update(self.api, self.run_db, self.engine, self.cards, d.text)

    async def _card(self, d: Delivery, now: datetime) -> str | datetime:
        """A card row: a card while a template is set, else (unset since it was written, or the
        card refused for good) the same step as markdown with its typed command."""
        if self.cards is not None:
            try:
                return await send_card(
                    self.api,
                    self.run_db,
                    self.engine,
                    self.cards,
                    d.key,
                    d.title,
                    d.plain_text or d.text,
                    d.at_user_ids,
                )
            except SendError as e:
                if e.retryable or e.quota:
                    raise
                # Refused for good (a template not published, a permission missing): the people it
                # asks to act must still hear of it.
                log.warning("card refused (%s): sent as markdown instead", e)
        return await self._chat(d, now)

    async def _chat(self, d: Delivery, now: datetime) -> str | datetime:
        """A chat message: a reply, a group message or a one-to-one one."""
        body = markdown_body(d.title, render_markdown(d.text), d.at_user_ids)
        fresh = d.webhook_expires_at and d.webhook_expires_at - now > timedelta(seconds=WEBHOOK_MARGIN_S)
        if d.kind == "reply" and d.session_webhook and fresh and self.api.trusts(d.session_webhook):
            try:
                await self.api.session_send(d.session_webhook, body)
                return "session"
            except SendError as e:
                if not e.expired:
                    raise
        robot = self.robots.get(d.conversation_id or "") if d.kind == "group" else None
        if robot:
            wait = await self.run_db(self.limiter.wait, robot.webhook, now)
            if wait > 0:
                return now + timedelta(seconds=wait)
            secret = self.secrets.get(robot.secret_env or "")
            try:
                await self.api.robot_send(robot.webhook, secret, body, msg_uuid(d.key) if d.key else "")
            except SendError as e:
                if e.blocked_s:
                    await self.run_db(self.limiter.blocked, robot.webhook, now + timedelta(seconds=e.blocked_s))
                raise
            return "robot"
        if self.openapi_paused_until is not None and self.openapi_paused_until > now:
            return self.openapi_paused_until
        # The OpenAPI cannot @ anyone (groupMessages/send and oToMessages/batchSend have no `at`
        # field: DINGTALK.md, open-dingtalk/dingtalk-stream-sdk-go#19): the names are written plain,
        # and whoever this row asks to act hears of it one to one, which notifies them. They are
        # told first: a retry after a failed group send may tell them twice, never not at all.
        text = d.plain_text or d.text
        if d.user_ids:
            _users_reached(d.user_ids, await self.api.user_send(d.user_ids, d.title, render_markdown(text)))
        elif d.conversation_id:
            if d.at_user_ids:
                missed = await self.api.user_send(d.at_user_ids, d.title, render_markdown(text))
                if missed.flow_controlled:  # they must hear of it: the whole row again, later
                    raise SendError(f"flowControlledStaffIdList {len(missed.flow_controlled)}", retryable=True)
            await self.api.group_send(d.conversation_id, d.title, render_markdown(text))
        else:
            raise SendError("no recipient", retryable=False)
        return "openapi"

    async def _todo(self, d: Delivery, now: datetime) -> str:
        """A DingTalk to-do created or changed (models/todos.py wrote the row)."""
        return await send_todo(self.api, self.run_db, self.engine, d.text, self.public_url)

    async def _work(self, d: Delivery, now: datetime) -> str | datetime:
        """A work notification (工作通知) to the row's users; without an agent id the app cannot
        send one, so they hear it one to one with the bot instead (which notifies them too).
        A refusal (a non-zero errcode other than busy, QPS or token) fails the row for good,
        recorded with its errcode; busy, throttled or a 5xx is retried with backoff."""
        if self.openapi_paused_until is not None and self.openapi_paused_until > now:
            return self.openapi_paused_until
        text = render_markdown(d.plain_text or d.text)
        if not self.agent_id:
            _users_reached(d.user_ids, await self.api.user_send(d.user_ids, d.title, text))
            return "openapi"
        await self.api.work_send(self.agent_id, d.user_ids, d.title, text)
        return "work"

    async def _ding(self, d: Delivery, now: datetime) -> str | datetime:
        """A DING (rows are written only when LIANDONG_DING_OVERDUE asks for them)."""
        if self.openapi_paused_until is not None and self.openapi_paused_until > now:
            return self.openapi_paused_until
        failed = set(await self.api.ding_send(d.user_ids, d.plain_text or d.text))
        missed = [u for u in d.user_ids if u in failed]
        if missed and len(missed) == len(d.user_ids):
            raise SendError(f"failedList {len(missed)}", retryable=False)
        if missed:
            raise Delivered("ding", f"failedList {len(missed)}")
        return "ding"

    # --- database side (run on the database thread) ---

    def _claim(self) -> list[Delivery]:
        """One conditional UPDATE … RETURNING: the due rows nobody holds, chosen with FOR UPDATE
        SKIP LOCKED on PostgreSQL (two senders claiming at once take disjoint rows, and a row
        claimed meanwhile is re-checked), under SQLite's one write lock otherwise."""
        now = self.clock.now()
        with unit_of_work(self.engine) as session:
            until = now + timedelta(seconds=self.claim_s)
            rows = sorted(session.execute(_CLAIM, {"now": now, "until": until}).all(), key=lambda r: r.id)
            if not rows:
                return []
            mentioned = [u for r in rows for u in r.at_user_ids]
            names = {p.id: p.name for p in people(session, mentioned)} if mentioned else {}
            return [_delivery(row, names) for row in rows]

    def _next_due_in(self) -> float:
        """Until the next retry is due or the next lease another sender holds lapses (it may
        have died; its conversation waits for it); at most the claim time."""
        now = self.clock.now()
        with Session(self.engine) as session:
            retry, lease = session.execute(_NEXT_DUE, {"now": now}).one()
        idle = min(30.0, self.claim_s)
        times = [t for t in (retry, lease) if t is not None]
        if not times:
            return idle
        return max(0.05, min(idle, (min(times) - now).total_seconds()))

    def _renew(self, ids: list[int]) -> None:
        until = self.clock.now() + timedelta(seconds=self.claim_s)
        with unit_of_work(self.engine) as session:
            session.execute(
                update(OUTBOX)
                .where(OUTBOX.c.id.in_(ids), OUTBOX.c.status == "pending", OUTBOX.c.claimed_until.is_not(None))
                .values(claimed_until=until)
            )

    def _record(self, outcomes: list[Outcome]) -> None:
        """These outcomes in one transaction: one statement for all the rows sent, one per
        other outcome. It runs after every send, so it is kept to plain Core statements on one
        connection, and reads the attempts only when some outcome is not a success."""
        sent = [
            {"row_id": o.row_id, "sent_at": o.at, "channel": o.channel, "note": o.note}
            for o in outcomes
            if o.kind == "sent"
        ]
        others = [o for o in outcomes if o.kind != "sent"]
        with self.engine.begin() as conn:
            if sent:
                conn.execute(_MARK_SENT, sent)
            if not others:
                return
            ids = [o.row_id for o in others]
            found = conn.execute(select(OUTBOX.c.id, OUTBOX.c.attempts).where(OUTBOX.c.id.in_(ids)))
            attempts: dict[int, int] = {row.id: row.attempts for row in found}
            for o in others:
                if o.row_id not in attempts:
                    continue
                change: dict[str, Any] = {"claimed_until": None}
                if o.kind == "defer":
                    change["next_attempt_at"] = o.at
                elif o.kind == "failed" and o.error is not None:
                    change.update(self._failed(o.row_id, attempts[o.row_id], o.error, o.at))
                    if o.user_ids is not None and change.get("status") != "failed":
                        change["user_ids"] = o.user_ids  # only those not yet reached
                conn.execute(update(OUTBOX).where(OUTBOX.c.id == o.row_id).values(**change))

    def _failed(self, row_id: int, attempts: int, error: SendError, now: datetime | None) -> dict[str, Any]:
        """The columns to change on a failed send."""
        attempts += 1
        change: dict[str, Any] = {"attempts": attempts, "last_error": str(error)[:200]}
        if not error.retryable or attempts >= MAX_ATTEMPTS:
            change["status"] = "failed"
            log.warning("outbox row %s failed for good: %s", row_id, change["last_error"])
        else:
            wait = max(error.blocked_s, backoff_s(attempts, self.rng))
            change["next_attempt_at"] = (now or self.clock.now()) + timedelta(seconds=wait)
        return change


OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
LIMITS = RateLimit.__table__  # type: ignore[attr-defined]
CLAIM_LIMIT = 100  # rows per pass
# Rows held across the passes under way: a slow conversation's queued rows wait in hand, and
# must not use up what the other conversations need.
IN_HAND = 4 * CLAIM_LIMIT
# Built once (statement and cache key): the sender runs these on every pass.
_OLDER = OUTBOX.alias("older")
# A row waits while an older row of its conversation is held by a sender (one that may have died
# holding it): the conversation's order survives a crash and several processes.
_HELD_BEFORE = exists().where(
    and_(
        _OLDER.c.conversation_id == OUTBOX.c.conversation_id,
        _OLDER.c.id < OUTBOX.c.id,
        _OLDER.c.status == "pending",
        _OLDER.c.claimed_until >= bindparam("now"),
    )
)
_DUE = (
    select(OUTBOX.c.id)
    .where(due(OUTBOX), ~_HELD_BEFORE)
    .order_by(OUTBOX.c.id)
    .limit(CLAIM_LIMIT)
    .with_for_update(skip_locked=True)
)
_CLAIM = update(OUTBOX).where(OUTBOX.c.id.in_(_DUE)).values(claimed_until=bindparam("until")).returning(*OUTBOX.c)
_PENDING = OUTBOX.c.status == "pending"
# Over the pending rows only (the status index): a FILTER alone would scan every row ever sent.
_NEXT_DUE = select(
    func.min(OUTBOX.c.next_attempt_at).filter(OUTBOX.c.next_attempt_at > bindparam("now")),
    func.min(OUTBOX.c.claimed_until).filter(OUTBOX.c.claimed_until >= bindparam("now")),
).where(_PENDING)
_MARK_SENT = (
    update(OUTBOX)
    .where(OUTBOX.c.id == bindparam("row_id"))
    .values(
        claimed_until=None,
        status="sent",
        sent_at=bindparam("sent_at"),
        channel=bindparam("channel"),
        attempts=OUTBOX.c.attempts + 1,
        last_error=func.coalesce(bindparam("note"), OUTBOX.c.last_error),
    )
)


def _users_reached(user_ids: list[str], missed: Undelivered) -> None:
    """Raise unless batchSend reached every user of the row: PartlySent for the throttled (they
    are tried again, alone), a permanent failure when DingTalk knows none of them, Delivered
    with a note when it knows only some."""
    invalid = [u for u in user_ids if u in set(missed.invalid)]
    throttled = [u for u in user_ids if u in set(missed.flow_controlled)]
    note = f"invalidStaffIdList {len(invalid)}" if invalid else ""
    if throttled:
        reason = f"flowControlledStaffIdList {len(throttled)}" + (f", {note}" if note else "")
        raise PartlySent(reason, throttled)
    if invalid and len(invalid) == len(user_ids):
        raise SendError(note, retryable=False)
    if invalid:
        raise Delivered("openapi", note)


def _conversation(d: Delivery) -> str:
    """What orders a row: its conversation, or for one-to-one rows the users it goes to."""
    return d.conversation_id or ",".join(d.user_ids)


def _delivery(row: Row[Any], names: dict[str, str]) -> Delivery:
    assert row.id is not None
    return Delivery(
        id=row.id,
        kind=row.kind,
        conversation_id=row.conversation_id,
        user_ids=list(row.user_ids),
        at_user_ids=list(row.at_user_ids),
        title=row.title,
        text=mentions(row.text, row.at_user_ids, names),
        session_webhook=row.session_webhook,
        webhook_expires_at=row.webhook_expires_at,
        attempts=row.attempts,
        plain_text=plain(row.text, [names[u] for u in row.at_user_ids if u in names]),
        key=row.key,
    )
