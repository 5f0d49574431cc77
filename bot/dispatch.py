"""One way in: an Incoming is made durable in the inbox, then processed in one transaction
that writes the issue change, its events, the outbox rows and the inbox outcome together."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session

from handlers import grammar
from handlers.context import Context, Refusal
from handlers.incoming import Incoming
from handlers.issue_commands import submit
from handlers.pictures import attach
from handlers.registry import HANDLERS
from handlers.replies import HELP, Notice, Reply, Result
from models import queries as q
from models.clock import Clock, SystemClock
from models.db import unit_of_work
from models.directory import Directory
from models.tables import InboxMessage, OutboxMessage
from schedules.calendar import WorkdayCalendar

log = logging.getLogger(__name__)

MIN_SUBMISSION = 10  # a message with no verb at least this long is a new submission


@dataclass(frozen=True)
class Outcome:
    reply: str
    at: tuple[str, ...]
    outcome: str  # ok | refused | error | duplicate
    issue_id: int | None = None


class Dispatcher:
    def __init__(self, engine: Engine, calendar: WorkdayCalendar | None = None, clock: Clock | None = None) -> None:
        self.engine = engine
        self.calendar = calendar or WorkdayCalendar()
        self.clock = clock or SystemClock()
        with Session(engine) as session:
            self.directory = Directory.load(session)

    def dispatch(self, msg: Incoming) -> Outcome:
        self.receive(msg)
        return self.process(msg.msg_id)

    def receive(self, msg: Incoming) -> bool:
        """Make the message durable (before it is acknowledged). False when already known."""
        return self.receive_many([msg])[0]

    def receive_many(self, msgs: list[Incoming]) -> list[bool]:
        """Group commit: store a burst in one transaction; True for each message new here."""
        try:
            with unit_of_work(self.engine) as session:
                return [self._store(session, msg) for msg in msgs]
        except IntegrityError:  # another process stored one of them first: go one by one
            if len(msgs) == 1:
                return [False]
            return [self.receive_many([m])[0] for m in msgs]

    def _store(self, session: Session, msg: Incoming) -> bool:
        if q.inbox_row(session, msg.msg_id):
            return False
        session.add(
            InboxMessage(
                msg_id=msg.msg_id,
                conversation_id=msg.conversation_id,
                sender_id=msg.sender_staff_id or msg.sender_union_id or msg.sender_id or "",
                payload=msg.to_json(),
                received_at=self.clock.now(),
            )
        )
        session.flush()  # a msgId repeated inside one burst is found by the next look-up
        return True

    def pending(self) -> list[str]:
        """Messages stored but not yet processed (after a crash or a restart), oldest first."""
        with Session(self.engine) as session:
            return q.pending_inbox(session)

    def process(self, msg_id: str) -> Outcome:
        return self.process_many([msg_id])[0]

    def process_many(self, msg_ids: list[str]) -> list[Outcome]:
        """Process stored messages in one commit (group commit). Each message runs in its own
        savepoint, so its issue change, events, outbox rows and inbox outcome land together or
        not at all; a database failure leaves every message of the batch pending."""
        try:
            with unit_of_work(self.engine) as session:
                return [self._process(session, msg_id) for msg_id in msg_ids]
        except DBAPIError:
            if len(msg_ids) == 1:
                raise  # the database is unwell: leave the message pending, to be processed again
            return [self.process(msg_id) for msg_id in msg_ids]  # find the one that cannot be stored

    def _process(self, session: Session, msg_id: str) -> Outcome:
        row = session.get(InboxMessage, msg_id)
        if row is None:
            raise KeyError(msg_id)
        if row.status == "done":
            stored = q.reply_of(session, msg_id)
            return Outcome(
                stored.text if stored else "", tuple(stored.at_user_ids) if stored else (), "duplicate", row.issue_id
            )
        msg = Incoming.from_json(row.payload)
        outcome, reason = "ok", None
        try:
            with session.begin_nested():  # a refusal or a bug undoes whatever the handler wrote
                result = self._route(session, msg)
        except Refusal as refusal:
            outcome, reason = "refused", str(refusal)
            result = Result(Reply(str(refusal)))
        except DBAPIError:
            raise
        except Exception as e:  # a bug in a handler: answer, record, and do not retry forever
            log.exception("message %s failed", msg_id)
            outcome, reason = "error", type(e).__name__
            result = Result(Reply("处理出错,已记录,请稍后再试或联系管理员。"))
        self._finish(session, row, msg, result, outcome, reason)
        log.info("message %s: %s", msg_id, outcome)
        return Outcome(result.reply.text, result.reply.at, outcome, result.issue_id)

    def _route(self, session: Session, msg: Incoming) -> Result:
        if len(msg.text.strip()) > grammar.MAX_LENGTH:
            raise Refusal(f"消息过长(超过{grammar.MAX_LENGTH}字),请精简后分条发送。")
        if "\ufffd" in msg.text:
            raise Refusal("消息含无法识别的字符,请重新输入后发送。")
        actor = q.find_sender(session, msg.sender_staff_id, msg.sender_union_id, msg.sender_id)
        if actor is None:
            raise Refusal(f"{msg.sender_nick or '你'}还未登记,请联系管理员添加。")
        if msg.msgtype not in ("text", "richText", "picture"):
            raise Refusal("暂只支持文字消息,请用文字描述。")
        cmd = grammar.parse(msg.text)
        ctx = Context(msg, cmd, actor, self.directory.get(actor.unit_id), session, self.directory, self.calendar)
        if msg.msgtype == "picture" or (msg.pictures and not cmd.text):  # photos alone: evidence for a recent post
            return attach(ctx)
        if cmd.verb is not None:
            return HANDLERS[cmd.verb](ctx)
        if not cmd.text:
            raise Refusal(HELP)
        if cmd.refs or len(cmd.text) < MIN_SUBMISSION:
            guess = grammar.suggest(cmd.text)
            if guess:
                raise Refusal(f"没有听懂。你是不是想用「{guess}」?回复「帮助」看用法。")
            raise Refusal(HELP)
        return submit(ctx, cmd.text)

    def _finish(
        self, session: Session, row: InboxMessage, msg: Incoming, result: Result, outcome: str, reason: str | None
    ) -> None:
        now = self.clock.now()
        reply = result.reply
        session.add(
            OutboxMessage(
                key=f"reply:{msg.msg_id}",
                kind="reply",
                conversation_id=msg.conversation_id,
                # A one-to-one chat has no group to fall back to once its webhook expires.
                user_ids=[msg.sender_staff_id] if msg.conversation_type == "1" and msg.sender_staff_id else [],
                at_user_ids=list(reply.at),
                title=reply.title,
                text=reply.text,
                session_webhook=msg.session_webhook,
                webhook_expires_at=msg.session_webhook_expires,
                created_at=now,
            )
        )
        for notice in result.notices:
            for out in self._notice_rows(session, msg, notice, now):
                session.add(out)
        row.status, row.outcome, row.reason = "done", outcome, reason
        row.issue_id, row.processed_at = result.issue_id, now
        session.add(row)

    def _notice_rows(self, session: Session, msg: Incoming, notice: Notice, now) -> list[OutboxMessage]:  # type: ignore[no-untyped-def]
        cids = [notice.conversation_id] if notice.conversation_id else q.conversations_of(session, notice.unit_id or 0)
        cids = [c for c in cids if c != msg.conversation_id]
        base = {"title": "两难助手", "text": notice.text, "at_user_ids": list(notice.at), "created_at": now}
        if cids:
            return [
                OutboxMessage(key=f"{notice.key}:{msg.msg_id}:{c}", kind="group", conversation_id=c, **base)
                for c in cids
            ]
        if notice.unit_id and notice.at and not q.conversations_of(session, notice.unit_id):
            # No group for that unit: tell the people who must act one to one.
            return [
                OutboxMessage(key=f"{notice.key}:{msg.msg_id}:users", kind="user", user_ids=list(notice.at), **base)
            ]
        return []
