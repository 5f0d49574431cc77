"""The outbox worker: claims due rows, sends each through the right channel, and records the
outcome. Session webhook while valid → OpenAPI; a group with a custom robot → the robot.
Retries with exponential backoff and jitter; a permanent failure is recorded, never dropped."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Engine, Row, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from bot.org import RobotConfig
from bot.transport.dingtalk_api import DingTalkApi, SendError, markdown_body
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
CLAIM_S = 120  # a sender that dies mid-send lets another take the row after this
WEBHOOK_MARGIN_S = 30  # do not start a session-webhook send that would expire under way
ROBOT_PER_MINUTE = 20


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


@dataclass(frozen=True)
class Outcome:
    row_id: int
    kind: str  # sent | failed | defer | release
    channel: str | None = None
    error: SendError | None = None
    at: datetime | None = None


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

    def __init__(
        self,
        engine: Engine,
        api: DingTalkApi,
        run_db: RunDb,
        clock: Clock,
        robots: dict[str, RobotConfig] | None = None,
        secrets: dict[str, str] | None = None,
        concurrency: int = 8,
        rng: random.Random | None = None,
        claim_s: float = CLAIM_S,
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
        self.limiter = SharedRobotLimiter(engine)

    async def send_due(self) -> int:
        """One pass: claim what is due, send it (conversations in parallel, each in order), and
        record every outcome in one transaction."""
        return (await self.run_pass())[0]

    async def _pass(self) -> tuple[int, bool]:
        """One pass: how many rows it claimed, and whether more may be due now (a full claim, a
        row released or retried)."""
        batch = await self.run_db(self._claim)
        by_conversation: dict[str, list[Delivery]] = defaultdict(list)
        for d in batch:
            by_conversation[d.conversation_id or ",".join(d.user_ids)].append(d)
        outcomes: list[Outcome] = []
        await asyncio.gather(*(self._send_in_order(items, outcomes) for items in by_conversation.values()))
        if outcomes:
            await self.run_db(self._record, outcomes)
        more = len(batch) >= CLAIM_LIMIT or any(o.kind != "sent" for o in outcomes)
        return len(batch), more

    async def flush(self, max_passes: int = 1000) -> None:
        """Send until nothing is due now (used at shutdown and by tests)."""
        for _ in range(max_passes):
            if not await self.send_due():
                return

    async def _send_in_order(self, items: list[Delivery], outcomes: list[Outcome]) -> None:
        for i, d in enumerate(items):
            async with self.limit:
                outcome = await self._send_one(d)
            outcomes.append(outcome)
            if outcome.kind != "sent":  # the rest of this conversation waits for the next pass
                outcomes.extend(Outcome(x.id, "release") for x in items[i + 1 :])
                return

    async def _send_one(self, d: Delivery) -> Outcome:
        now = self.clock.now()
        try:
            channel = await self._deliver(d, now)
        except SendError as e:
            return Outcome(d.id, "failed", error=e, at=now)
        except Exception as e:  # a bug must not lose the row: it is retried and visible
            log.exception("sending outbox row %s failed", d.id)
            return Outcome(d.id, "failed", error=SendError(type(e).__name__, retryable=True), at=now)
        if isinstance(channel, datetime):
            return Outcome(d.id, "defer", at=channel)
        return Outcome(d.id, "sent", channel=channel, at=now)

    async def _deliver(self, d: Delivery, now: datetime) -> str | datetime:
        """Send; the channel used, or the time to try again when a robot's minute is full."""
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
                await self.api.robot_send(robot.webhook, secret, body)
            except SendError as e:
                if e.blocked_s:
                    await self.run_db(self.limiter.blocked, robot.webhook, now + timedelta(seconds=e.blocked_s))
                raise
            return "robot"
        # The OpenAPI cannot @ anyone (groupMessages/send and oToMessages/batchSend have no `at`
        # field: DINGTALK.md, open-dingtalk/dingtalk-stream-sdk-go#19): the names are written plain,
        # and whoever this row asks to act hears of it one to one, which notifies them. They are
        # told first: a retry after a failed group send may tell them twice, never not at all.
        text = d.plain_text or d.text
        if d.user_ids:
            await self.api.user_send(d.user_ids, d.title, render_markdown(text))
        elif d.conversation_id:
            if d.at_user_ids:
                await self.api.user_send(d.at_user_ids, d.title, render_markdown(text))
            await self.api.group_send(d.conversation_id, d.title, render_markdown(text))
        else:
            raise SendError("no recipient", retryable=False)
        return "openapi"

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
        """Until the next retry is due; at most the claim time, by when a row another sender
        claimed and never finished (it died) is due again."""
        with Session(self.engine) as session:
            nxt = session.execute(_NEXT_DUE).scalar()
        idle = min(30.0, self.claim_s)
        if nxt is None:
            return idle
        return max(0.05, min(idle, (nxt - self.clock.now()).total_seconds()))

    def _record(self, outcomes: list[Outcome]) -> None:
        """Every outcome of a pass in one transaction: one statement for all the rows sent,
        one per other outcome."""
        with unit_of_work(self.engine) as session:
            found = session.execute(
                select(OUTBOX.c.id, OUTBOX.c.attempts).where(OUTBOX.c.id.in_([o.row_id for o in outcomes]))
            )
            attempts: dict[int, int] = {row.id: row.attempts for row in found}
            sent: list[dict[str, Any]] = []
            for o in outcomes:
                if o.row_id not in attempts:
                    continue
                change: dict[str, Any] = {"claimed_until": None}
                if o.kind == "sent":
                    sent.append({"row_id": o.row_id, "sent_at": o.at, "channel": o.channel})
                    continue
                if o.kind == "defer":
                    change["next_attempt_at"] = o.at
                elif o.kind == "failed" and o.error is not None:
                    change.update(self._failed(o.row_id, attempts[o.row_id], o.error, o.at))
                session.execute(update(OUTBOX).where(OUTBOX.c.id == o.row_id).values(**change))
            if sent:
                session.execute(_MARK_SENT, sent)

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
# Built once (statement and cache key): the sender runs these on every pass.
_DUE = select(OUTBOX.c.id).where(due(OUTBOX)).order_by(OUTBOX.c.id).limit(CLAIM_LIMIT).with_for_update(skip_locked=True)
_CLAIM = update(OUTBOX).where(OUTBOX.c.id.in_(_DUE)).values(claimed_until=bindparam("until")).returning(*OUTBOX.c)
_NEXT_DUE = (
    select(OUTBOX.c.next_attempt_at)
    .where(OUTBOX.c.status == "pending", OUTBOX.c.next_attempt_at.is_not(None))
    .order_by(OUTBOX.c.next_attempt_at)
    .limit(1)
)
_MARK_SENT = (
    update(OUTBOX)
    .where(OUTBOX.c.id == bindparam("row_id"))
    .values(
        claimed_until=None,
        status="sent",
        sent_at=bindparam("sent_at"),
        channel=bindparam("channel"),
        attempts=OUTBOX.c.attempts + 1,
    )
)


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
    )
