"""One way in: an Incoming is made durable in the inbox, then processed in one transaction
that writes the issue change, its events, the outbox rows and the inbox outcome together.

A message whose verb only reads (统计, 列表, 查, 帮助: `Verb.writes`) is not answered inside that
transaction: its reply is computed on a read session of its own (models.db.read_session), and
only the reply's outbox rows and the inbox outcome are written, in a short transaction that
checks the message is still pending, so a long report never holds the write lock."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, insert, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session

from handlers import grammar, verbs
from handlers.context import Context, Refusal
from handlers.incoming import Incoming
from handlers.replies import Notice, Reply, Result
from models import audience, cards, outbox
from models import queries as q
from models.calendar import WorkdayCalendar
from models.clock import Clock, SystemClock
from models.db import outage, read_session, unit_of_work
from models.directory import Directory
from models.masking import mask
from models.tables import InboxMessage

log = logging.getLogger(__name__)
INBOX_LEASE_S = 60.0  # a stored message not processed by then is taken up by any process's sweep
SWEEP_LIMIT = 500  # messages one sweep takes


@dataclass(frozen=True)
class Outcome:
    reply: str
    at: tuple[str, ...]
    # ok | refused | error | duplicate | taken (another process is processing it) | deferred (it
    # only reads: left pending for `answer`, which computes it outside the write transaction)
    outcome: str
    issue_id: int | None = None


@dataclass(frozen=True)
class Prepared:
    """A read-only message's reply, computed on a read session, not yet written."""

    msg_id: str
    msg: Incoming
    result: Result
    outcome: str
    reason: str | None


class Dispatcher:
    def __init__(
        self,
        engine: Engine,
        calendar: WorkdayCalendar | None = None,
        clock: Clock | None = None,
        duty_leads: tuple[str, ...] = (),
        card_template_id: str | None = None,
    ) -> None:
        self.engine = engine
        self.cards = bool(card_template_id)  # the one-tap steps go out as interactive cards
        self.calendar = calendar or WorkdayCalendar()
        self.clock = clock or SystemClock()
        self.duty_leads = duty_leads  # the org file's duty_leads: who takes an escalation to the district
        self.lease = timedelta(seconds=INBOX_LEASE_S)
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
                return self._store_many(session, msgs)
        except IntegrityError:  # another process stored one of them first: go one by one
            if len(msgs) == 1:
                return [False]
            return [self.receive_many([m])[0] for m in msgs]

    def _store_many(self, session: Session, msgs: list[Incoming]) -> list[bool]:
        """One look-up for the burst's msgIds and one multi-row insert (Core: inbox rows are
        append-only here, and the ORM's object bookkeeping is most of the cost of a row)."""
        ids = list(dict.fromkeys(m.msg_id for m in msgs))
        known: set[str] = set()
        for chunk in _chunks(ids):
            known.update(session.execute(select(INBOX.c.msg_id).where(INBOX.c.msg_id.in_(chunk))).scalars())
        fresh, rows = [], []
        now = self.clock.now()
        for msg in msgs:
            new = msg.msg_id not in known  # a msgId repeated inside one burst is stored once
            if new:
                known.add(msg.msg_id)
                rows.append(
                    {
                        "msg_id": msg.msg_id,
                        "conversation_id": msg.conversation_id,
                        "sender_id": msg.sender_staff_id or msg.sender_union_id or msg.sender_id or "",
                        "payload": msg.to_json(),
                        "received_at": now,
                        "status": "pending",
                        "outcome": None,
                        "reason": None,
                        "issue_id": None,
                        "processed_at": None,
                        # This process holds it; should it die before processing, a sweep takes it.
                        "claimed_until": now + self.lease,
                    }
                )
            fresh.append(new)
        if rows:
            session.execute(insert(INBOX), rows)
        return fresh

    def pending(self) -> list[str]:
        """Messages stored but not yet processed (after a crash or a restart), oldest first."""
        with Session(self.engine) as session:
            return q.pending_inbox(session)

    def claim_stale(self) -> list[str]:
        """Take the pending messages whose holder let its claim expire (it died, or the database
        failed under it), oldest first: one conditional UPDATE … RETURNING, its rows chosen with
        FOR UPDATE SKIP LOCKED on PostgreSQL, so two processes sweeping at once take disjoint sets."""
        now = self.clock.now()
        with unit_of_work(self.engine) as session:
            rows = session.execute(_CLAIM_STALE, {"now": now, "until": now + self.lease}).all()
        return [r.msg_id for r in sorted(rows, key=lambda r: (r.received_at, r.msg_id))]

    def process(self, msg_id: str) -> Outcome:
        return self.process_many([msg_id])[0]

    def process_many(self, msg_ids: list[str]) -> list[Outcome]:
        """Process stored messages, the read-only ones answered after the batch's commit."""
        outcomes = self.process_writes(msg_ids)
        return [self.answer(m) if o.outcome == "deferred" else o for m, o in zip(msg_ids, outcomes, strict=True)]

    def process_writes(self, msg_ids: list[str]) -> list[Outcome]:
        """Process stored messages in one commit (group commit). Each message runs in its own
        savepoint, so its issue change, events, outbox rows and inbox outcome land together or
        not at all; a database failure leaves every message of the batch pending. A message
        that only reads comes back `deferred`, still pending: `answer` it."""
        try:
            with unit_of_work(self.engine) as session:
                batch = _Batch(self._inbox_rows(session, msg_ids))
                return [self._process(session, msg_id, batch) for msg_id in msg_ids]
        except DBAPIError as e:
            # The database is unwell (locked, read-only, gone): every message would fail the same
            # way, each after its own busy timeout, so the batch is left pending as a whole.
            if len(msg_ids) == 1 or outage(e):
                raise
            return [self.process_writes([msg_id])[0] for msg_id in msg_ids]  # find the one that cannot be stored

    def answer(self, msg_id: str) -> Outcome:
        """A deferred (read-only) message, computed and written: `prepare` then `finish`."""
        prepared = self.prepare(msg_id)
        return prepared if isinstance(prepared, Outcome) else self.finish(prepared)

    def prepare(self, msg_id: str) -> Prepared | Outcome:
        """The reply of a read-only message, computed on a read session (no write lock, no
        write transaction); an Outcome instead when it was answered meanwhile."""
        with read_session(self.engine) as session:
            row = session.execute(select(INBOX.c.status, INBOX.c.payload).where(INBOX.c.msg_id == msg_id)).first()
            if row is None:
                raise KeyError(msg_id)
            if row.status == "done":
                return self._duplicate(session, msg_id)
            msg = Incoming.from_json(row.payload)
            result, outcome, reason = self._run(session, msg, None, savepoint=False)
            return Prepared(msg_id, msg, result, outcome, reason)

    def finish(self, p: Prepared) -> Outcome:
        """Write a prepared reply: its outbox rows and the inbox outcome, in one short
        transaction, only while the message is still pending (exactly once across processes)."""
        with unit_of_work(self.engine) as session:
            row = self._inbox_rows(session, [p.msg_id]).get(p.msg_id)
            if row is None:
                return Outcome("", (), "taken")
            if row.status == "done":
                return self._duplicate(session, p.msg_id, row.issue_id)
            self._finish(session, row, p.msg, p.result, p.outcome, p.reason)
        log.info("message %s: %s", p.msg_id, p.outcome)
        return Outcome(p.result.reply.text, p.result.reply.at, p.outcome, p.result.issue_id)

    @staticmethod
    def _inbox_rows(session: Session, msg_ids: list[str]) -> dict[str, _InboxRow]:
        ids = list(dict.fromkeys(msg_ids))
        rows: dict[str, _InboxRow] = {}
        for chunk in _chunks(ids):
            # The row lock is the claim while the batch is processed: a message another process is
            # processing right now is skipped (not waited for), and the status read is the latest
            # committed one. SQLite: the unit of work holds the one write lock from BEGIN.
            query = (
                select(INBOX.c.msg_id, INBOX.c.status, INBOX.c.payload, INBOX.c.issue_id)
                .where(INBOX.c.msg_id.in_(chunk))
                .with_for_update(skip_locked=True)
            )
            rows.update(
                (r.msg_id, _InboxRow(r.msg_id, r.status, r.payload, r.issue_id)) for r in session.execute(query)
            )
        return rows

    def _process(self, session: Session, msg_id: str, batch: _Batch) -> Outcome:
        row = batch.inbox.get(msg_id)
        if row is None:
            if session.execute(select(INBOX.c.msg_id).where(INBOX.c.msg_id == msg_id)).first() is None:
                raise KeyError(msg_id)
            return Outcome("", (), "taken")  # locked by another process, which is processing it
        if row.status == "done":
            return self._duplicate(session, msg_id, row.issue_id)
        msg = Incoming.from_json(row.payload)
        if reads_only(msg):
            return Outcome("", (), "deferred")
        result, outcome, reason = self._run(session, msg, batch, savepoint=True)
        self._finish(session, row, msg, result, outcome, reason)
        log.info("message %s: %s", msg_id, outcome)
        return Outcome(result.reply.text, result.reply.at, outcome, result.issue_id)

    @staticmethod
    def _duplicate(session: Session, msg_id: str, issue_id: int | None = None) -> Outcome:
        stored = q.reply_of(session, msg_id)
        text, at = (stored.text, tuple(stored.at_user_ids)) if stored else ("", ())
        return Outcome(text, at, "duplicate", issue_id)

    def _run(
        self, session: Session, msg: Incoming, batch: _Batch | None, *, savepoint: bool
    ) -> tuple[Result, str, str | None]:
        """The handler's result, outcome and reason. In a write transaction a savepoint undoes
        whatever a refused or failed handler wrote; a read session is never committed."""
        try:
            with session.begin_nested() if savepoint else contextlib.nullcontext():
                return self._route(session, msg, batch), "ok", None
        except Refusal as refusal:
            return Result(Reply(str(refusal))), "refused", str(refusal)
        except DBAPIError:
            raise
        except Exception as e:  # a bug in a handler: answer, record, and do not retry forever
            log.exception("message %s failed", msg.msg_id)
            return Result(Reply("处理出错,已记录,请稍后再试或联系管理员。")), "error", type(e).__name__

    def _route(self, session: Session, msg: Incoming, batch: _Batch | None = None) -> Result:
        if len(msg.text.strip()) > grammar.MAX_LENGTH:
            raise Refusal(f"消息过长(超过{grammar.MAX_LENGTH}字),请精简后分条发送。")
        if "\ufffd" in msg.text:
            raise Refusal("消息含无法识别的字符,请重新输入后发送。")
        actor = q.find_sender(session, msg.sender_staff_id, msg.sender_union_id, msg.sender_id)
        if actor is None:
            raise Refusal(f"{mask(msg.sender_nick) or '你'}还未登记,请联系管理员添加。")
        if batch is not None:
            batch.keep.append(actor)
        if msg.msgtype not in ("text", "richText", "picture"):
            raise Refusal("暂只支持文字消息,请用文字描述。")
        ctx = Context(
            msg,
            verbs.parse(msg.text),
            actor,
            self.directory.get(actor.unit_id),
            session,
            self.directory,
            self.calendar,
            duty_leads=self.duty_leads,
        )
        return verbs.handle(ctx)

    def _finish(
        self, session: Session, row: _InboxRow, msg: Incoming, result: Result, outcome: str, reason: str | None
    ) -> None:
        """The outbox rows (in one multi-row insert) and the inbox outcome (Core statements: both
        are plain row writes, and nothing later in the batch needs them as objects)."""
        now = self.clock.now()
        reply = result.reply
        rows = [
            outbox.row(
                outbox.reply_key(msg.msg_id),
                "reply",
                title=reply.title,
                text=reply.text,
                created_at=now,
                conversation_id=msg.conversation_id,
                # A one-to-one chat has no group to fall back to once its webhook expires.
                user_ids=[msg.sender_staff_id] if msg.conversation_type == "1" and msg.sender_staff_id else [],
                at_user_ids=reply.at,
                session_webhook=msg.session_webhook,
                webhook_expires_at=msg.session_webhook_expires,
            )
        ]
        asks: dict[str, str] = {}  # a notice's row key → the one-tap step that notice asks for
        for notice in result.notices:
            notice_rows = self._notice_rows(session, msg, notice, now)
            if notice.step:
                asks.update((r["key"], notice.step) for r in notice_rows)
            rows.extend(notice_rows)
        if msg.conversation_type != "1" and msg.sender_staff_id:  # a poster is a member of the group
            audience.seen_posting(session, [(msg.conversation_id, msg.sender_staff_id)])
        # Everyone asked to act is reached: by a real @ where they are a member, else one to one.
        rows = outbox.reach(session, rows, outbox.notice_key("act", msg.msg_id), now)
        if self.cards and outcome == "ok" and result.issue_id is not None:
            rows = self._offer_cards(session, rows, result.issue_id, reply.step, asks, now)
        track = cards.pressed(msg.msg_id)
        if track and outcome == "ok":  # a card's button went through: the card says how, in place
            rows.extend(cards.answered(session, track, msg.text, reply.text, reply.at, now, msg.msg_id))
        outbox.write(session, rows)
        done = session.execute(
            update(INBOX)
            .where(INBOX.c.msg_id == row.msg_id, INBOX.c.status == "pending")
            .values(status="done", outcome=outcome, reason=reason, issue_id=result.issue_id, processed_at=now)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            # Never under the row lock; if it happens, nothing of this batch is kept.
            raise RuntimeError(f"inbox message {row.msg_id} was processed by another process")
        row.status, row.issue_id = "done", result.issue_id  # a msgId twice in one batch is a duplicate

    @staticmethod
    def _offer_cards(
        session: Session,
        rows: list[dict[str, Any]],
        issue_id: int,
        step: str | None,
        asks: dict[str, str],
        now: datetime,
    ) -> list[dict[str, Any]]:
        """The rows made cards where they ask for a step: a notice's rows for its own step, the
        others (the reply, and whom it reaches one to one) for the reply's."""
        out = list(rows)
        for each in dict.fromkeys([*asks.values(), *([step] if step else [])]):
            at = [i for i, r in enumerate(out) if asks.get(r["key"], step) == each]
            for i, made in zip(at, cards.offer(session, [out[i] for i in at], issue_id, each, now), strict=True):
                out[i] = made
        return out

    @staticmethod
    def _notice_rows(session: Session, msg: Incoming, notice: Notice, now: datetime) -> list[dict[str, Any]]:
        """A notice goes to the unit's groups (or the conversation named) but not back where the
        message came from; a unit with no group: to the people it @-mentions, one to one."""
        return outbox.to_unit(
            session,
            outbox.notice_key(notice.key, msg.msg_id),
            unit_id=notice.unit_id,
            title=outbox.BOT_TITLE,
            text=notice.text,
            people=list(notice.at),
            created_at=now,
            conversation_id=notice.conversation_id,
            skip=lambda cid: cid == msg.conversation_id,
        )


def reads_only(msg: Incoming) -> bool:
    """Whether the message can only be answered by reading: a text whose verb does not write
    (photos, or a picture message, are evidence to keep: verbs.handle sends those to pictures)."""
    if msg.msgtype not in ("text", "richText") or msg.pictures:
        return False
    cmd = verbs.parse(msg.text)
    return cmd.verb is not None and not verbs.form_of(cmd).writes


INBOX = InboxMessage.__table__  # type: ignore[attr-defined]
LOOKUP_CHUNK = 500  # msgIds per IN (...) look-up
_CLAIM_STALE = (
    update(INBOX)
    .where(
        INBOX.c.msg_id.in_(
            select(INBOX.c.msg_id)
            .where(
                INBOX.c.status == "pending",
                or_(INBOX.c.claimed_until.is_(None), INBOX.c.claimed_until < bindparam("now")),
            )
            .order_by(INBOX.c.received_at)
            .limit(SWEEP_LIMIT)
            .with_for_update(skip_locked=True)
        )
    )
    .values(claimed_until=bindparam("until"))
    .returning(INBOX.c.msg_id, INBOX.c.received_at)
)


@dataclass
class _InboxRow:
    msg_id: str
    status: str
    payload: dict[str, Any]
    issue_id: int | None


@dataclass
class _Batch:
    inbox: dict[str, _InboxRow]
    # Objects loaded for one message (the sender) stay in the session's identity map for the rest
    # of the batch instead of being collected and loaded again by the next message.
    keep: list[object] = field(default_factory=list)


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    """msgIds in slices short enough for one IN (...) (SQLite caps bound parameters)."""
    for i in range(0, len(ids), LOOKUP_CHUNK):
        yield ids[i : i + LOOKUP_CHUNK]
