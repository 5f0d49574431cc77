"""The tables. Datetimes are timezone-aware and stored in UTC; calendar logic converts to
Asia/Shanghai (models.clock). Facts that depend on the Shanghai calendar at the moment of an
event (an assignment made on a Tuesday) are stored with the event, so SQL never needs a zone."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


def _empty_list() -> list[Any]:
    # pydantic inspects a default factory's signature on every construction; for the builtins
    # `list` and `dict` that costs ~40 µs (parsed from their text signature), for a function ~3 µs.
    return []


def _empty_dict() -> dict[str, Any]:
    return {}


class Unit(SQLModel, table=True):
    __tablename__ = "units"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    kind: str  # a models.vocabulary.UnitKind
    parent_id: int | None = Field(default=None, foreign_key="units.id")
    aliases: list[str] = Field(default_factory=_empty_list, sa_column=Column(JSON, nullable=False))

    __table_args__ = (UniqueConstraint("parent_id", "name", name="uq_unit_parent_name"),)


class Person(SQLModel, table=True):
    __tablename__ = "people"
    id: str = Field(primary_key=True)  # DingTalk staffId
    name: str
    role: str
    unit_id: int = Field(foreign_key="units.id")
    union_id: str | None = Field(default=None, index=True)
    dingtalk_id: str | None = Field(default=None, index=True)
    # "chat" once an admin changed the row in chat: the org file no longer overrides it;
    # "dingtalk" for someone only DingTalk's contacts list (bot.contacts placed them).
    source: str = "file"
    # False once DingTalk's contacts no longer list them: they keep their history, not their rights.
    active: bool = True


class ContactEvent(SQLModel, table=True):
    """A contact change applied: a DingTalk contact event (keyed by its eventId, so a repeated
    one applies once) or a `liandong org sync` (keyed `sync:…`), with the changes it made."""

    __tablename__ = "contact_events"
    event_id: str = Field(primary_key=True)
    event_type: str  # user_add_org, user_leave_org, …, or org_sync
    at: datetime
    changes: list[dict[str, Any]] = Field(default_factory=_empty_list, sa_column=Column(JSON, nullable=False))


class GroupBinding(SQLModel, table=True):
    __tablename__ = "group_bindings"
    conversation_id: str = Field(primary_key=True)
    unit_id: int = Field(foreign_key="units.id")
    source: str = "file"


class Issue(SQLModel, table=True):
    """A projection of the issue's events (models.lifecycle.apply is the only writer)."""

    __tablename__ = "issues"
    id: int | None = Field(default=None, primary_key=True)
    title: str = ""
    text: str = ""
    level: str = "village"
    status: str = "submitted"  # a models.vocabulary.Status
    unit_id: int = Field(foreign_key="units.id")  # the unit handling it now
    township_id: int | None = Field(default=None, foreign_key="units.id")
    village_id: int | None = Field(default=None, foreign_key="units.id")
    category: str = "其他"
    risk: str | None = None  # 高 / 中 / 低, set by 研判
    litigation_risk: bool = False  # 行政败诉风险 是
    litigation_suspected: bool = False  # 疑似: a suit threatened, against whom unclear; never with 是
    phones: list[str] = Field(default_factory=_empty_list, sa_column=Column(JSON, nullable=False))
    has_id_number: bool = False
    reporter_id: str = Field(foreign_key="people.id")
    owner_id: str | None = Field(default=None, foreign_key="people.id")
    department_id: int | None = Field(default=None, foreign_key="units.id")
    deadline: date | None = None
    # What the post asked for (限3天, 月底前); the official deadline is set by 交办 alone.
    requested_deadline: date | None = None
    tuesday: bool = False
    opinion: str | None = None
    extension_days: int | None = None  # a pending 延期 request
    duplicate_of: int | None = Field(default=None, foreign_key="issues.id", index=True)
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None = None
    # (resolved_at - created_at) in days, as the dashboard's median takes it; kept with resolved_at.
    resolved_days: float | None = None
    result: str | None = None
    source_msg_id: str = Field(index=True)
    event_count: int = 0
    head_hash: str = ""
    # The deadline whose every late step (催办, leads, 通报) the overdue ladder has taken, kept by
    # the ladder with its ladder_steps rows: while it equals `deadline` nothing is left to send,
    # so the daily read skips the case from the index alone. Bookkeeping of the ladder, not of
    # the case's life (no event; a new deadline makes it stale by itself).
    ladder_settled: date | None = None

    # A unit's issues of a period (the subtree scope first, then the registration time), the
    # period alone (the district), and the overdue ladder (by status, then deadline). The
    # period indexes also carry what the dashboard's township rows read (status, deadline,
    # resolved_days), so those rows are counted from the index alone.
    __table_args__ = (
        Index("ix_issue_village_created", "village_id", "created_at"),
        Index("ix_issue_township_created", "township_id", "created_at", "status", "deadline", "resolved_days"),
        Index("ix_issue_created", "created_at", "township_id", "status", "deadline", "resolved_days"),
        # A township's resolved issues by resolved_days, the period checked from the index: the
        # median per township reads up to its middle value in order, with no sort (at 1M cases,
        # 13 ms → 2 ms a township on SQLite).
        Index("ix_issue_township_resolved", "township_id", "status", "resolved_days", "created_at"),
        # The issue number rides along on PostgreSQL (SQLite's indexes hold the rowid anyway), so
        # the digest's overdue numbers, and the ladder's cases still to act on, are read from the
        # index alone.
        Index("ix_issue_status_deadline_ladder", "status", "deadline", "ladder_settled", postgresql_include=["id"]),
        # A village's or township's open and overdue cases without reading its other issues: the
        # weekly digest counts them for every bound group (a village at 1M: 11 ms → under 1 ms).
        Index("ix_issue_village_open", "village_id", "status", "deadline", "created_at", postgresql_include=["id"]),
        Index("ix_issue_township_open", "township_id", "status", "deadline", "created_at", postgresql_include=["id"]),
    )


class IssueEvent(SQLModel, table=True):
    """Append-only; each row carries the hash of the issue's previous event."""

    __tablename__ = "issue_events"
    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issues.id")
    seq: int
    kind: str  # a models.events.Kind
    actor_id: str
    at: datetime  # the chat message's createAt
    level: str  # the issue's level after this event
    unit_id: int
    tuesday: bool = False  # assignments: made on a Tuesday or tagged 周二无会日
    msg_id: str
    data: dict[str, Any] = Field(default_factory=_empty_dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str
    hash: str

    __table_args__ = (
        UniqueConstraint("issue_id", "seq", name="uq_event_issue_seq"),
        Index("ix_event_kind_level_at", "kind", "level", "at"),
    )


class InboxMessage(SQLModel, table=True):
    """Every inbound message, keyed by DingTalk msgId, written before it is acknowledged."""

    __tablename__ = "inbox"
    msg_id: str = Field(primary_key=True)
    conversation_id: str
    sender_id: str
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))  # the normalized Incoming
    received_at: datetime
    status: str = Field(default="pending", index=True)  # pending | done
    outcome: str | None = None  # ok | refused | error
    reason: str | None = None  # why it was refused, or the error type
    issue_id: int | None = None
    processed_at: datetime | None = None
    # The process that stored (or swept up) a pending message holds it until then; after that a
    # sweep of any process takes it (its owner died between the acknowledgement and processing).
    claimed_until: datetime | None = None

    __table_args__ = (Index("ix_inbox_status_claimed", "status", "claimed_until"),)


class CountFact(SQLModel, table=True):
    """What PRODUCT §2 counts, kept as it happens (models.facts, called by models.lifecycle.record,
    maintains it in the transaction of the event): one row per countable fact of an issue.

    - village_entered / township_entered / district_assigned: one per issue at most, `at` when it
      first happened (district_assigned: its first district 交办, `tuesday` its 周二无会日 flag).
    - village_resolved / township_resolved / district_resolved: one per 办结 at that level.
      `prev_at`: the issue's previous resolution at the same level (in time order), so "issues
      resolved at L in P" counts the rows in P whose `prev_at` lies before P (each issue once).
      `until` (district): the earliest status change after it; the issue is resolved at district
      as of a cutoff c exactly when at < c <= until (or until is empty). A district resolution
      also carries the issue's first district assignment: `prev_at` its time, `tuesday` its flag.

    `prior_at` (each resolution): the time of the issue's latest 办结 below the district before
    it, in (at, seq) order, so "the first resolution in a window" is a row whose prior_at lies
    before the window, read without grouping by issue (the dashboard's trend).

    The unit columns are the issue's current ones (改 and 交办 move them), for subtree scopes;
    a duplicate closed by 合并 has no rows."""

    __tablename__ = "count_facts"
    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issues.id")
    kind: str  # a models.facts.Fact
    seq: int  # the event that made it
    at: datetime
    prev_at: datetime | None = None
    until: datetime | None = None
    tuesday: bool = False
    township_id: int | None = None
    village_id: int | None = None
    department_id: int | None = None
    prior_at: datetime | None = None

    __table_args__ = (
        Index("ix_fact_issue_kind", "issue_id", "kind", "at", "until"),
        Index("ix_fact_kind_at", "kind", "at", "prev_at", "until", "tuesday", "issue_id", "prior_at"),
        Index("ix_fact_township_kind_at", "township_id", "kind", "at", "prev_at", "until", "tuesday"),
        Index("ix_fact_village_kind_at", "village_id", "kind", "at", "prev_at", "until", "tuesday"),
        Index("ix_fact_department_kind_at", "department_id", "kind", "at", "prev_at", "until", "tuesday"),
    )


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True)  # idempotency key: one row per logical message
    kind: str  # reply | group | user | todo (models.todos)
    conversation_id: str | None = None
    user_ids: list[str] = Field(default_factory=_empty_list, sa_column=Column(JSON, nullable=False))
    at_user_ids: list[str] = Field(default_factory=_empty_list, sa_column=Column(JSON, nullable=False))
    title: str
    text: str  # DingTalk markdown
    session_webhook: str | None = None
    webhook_expires_at: datetime | None = None
    status: str = Field(default="pending", index=True)  # pending | sent | failed
    attempts: int = 0
    last_error: str | None = None
    created_at: datetime
    sent_at: datetime | None = None
    next_attempt_at: datetime | None = None  # a retry waits until then
    claimed_until: datetime | None = None  # a sender holds the row until then (several processes)
    channel: str | None = None  # how it went out: session | openapi | robot


class TodoTask(SQLModel, table=True):
    """A DingTalk to-do (待办) of a case for one person: written with the outbox row that creates
    it; `task_id` is DingTalk's id, known once the create has answered (the later updates wait
    for it). Transport bookkeeping like the outbox's status, so no event of its own."""

    __tablename__ = "todo_tasks"
    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issues.id", index=True)
    person_id: str
    union_id: str
    task_id: str | None = None
    created_at: datetime

    __table_args__ = (UniqueConstraint("issue_id", "person_id", name="uq_todo_issue_person"),)


class WebSession(SQLModel, table=True):
    """A dashboard sign-in through DingTalk (bot.web.login): the SHA-256 of the cookie's token,
    never the token, names a person until `expires_at`. Kept in the database so that every web
    process behind one proxy knows it (issue 11) and a restart signs no one out; the person's
    unit is still looked up on every request. Access bookkeeping, not a case's state: no event."""

    __tablename__ = "web_sessions"
    token_sha256: str = Field(primary_key=True)
    person_id: str
    created_at: datetime
    expires_at: datetime = Field(index=True)  # the expired are swept at the next sign-in


class CardInstance(SQLModel, table=True):
    """An interactive card (互动卡片) the bot delivered: DingTalk knows it by `out_track_id` (our
    id, derived from the outbox row's key), a press comes back with it, and the card is updated
    in place under it. `step` is what the card asks (models/cards.py); `answer` what a press
    answered, once the step is done. Transport bookkeeping like the outbox's status, so no event
    of its own (the press itself is a chat command, with the command's events). No foreign key:
    a card outlives nothing it points at, and the counts' fuzz wipes issues freely."""

    __tablename__ = "card_instances"
    id: int | None = Field(default=None, primary_key=True)
    out_track_id: str = Field(unique=True)
    outbox_key: str
    issue_id: int = Field(index=True)
    step: str
    conversation_id: str | None = None  # the group it was delivered into (IM_GROUP)
    user_id: str | None = None  # or the person, in their 1:1 chat with the bot (IM_ROBOT)
    answer: str | None = None
    created_at: datetime
    updated_at: datetime | None = None


class JobRun(SQLModel, table=True):
    """One row per scheduled occurrence of a job, or per manual run: done, missed or failed.
    Unique on (job, due_at), so two processes cannot both run the same occurrence."""

    __tablename__ = "job_runs"
    id: int | None = Field(default=None, primary_key=True)
    job: str
    due_at: datetime | None = None  # the occurrence it stands for; None for a manual run (CLI)
    trigger: str  # schedule | catch_up (late, after a restart) | manual
    status: str  # done | missed | failed
    messages: int = 0
    error: str | None = None  # the exception type, like inbox.reason
    runner: str = ""  # which process
    started_at: datetime
    finished_at: datetime | None = None

    __table_args__ = (UniqueConstraint("job", "due_at", name="uq_job_run_due"),)


class LadderStep(SQLModel, table=True):
    """A step of the overdue ladder already taken for an issue and its deadline: each step is
    sent once, and a new deadline (延期) starts the ladder again."""

    __tablename__ = "ladder_steps"
    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issues.id")
    deadline: date
    step: str  # due_soon | overdue | leads | district
    sent_at: datetime
    outbox_key: str

    __table_args__ = (UniqueConstraint("issue_id", "deadline", "step", name="uq_ladder_issue_deadline_step"),)


class PhotoDownload(SQLModel, table=True):
    """A picture kept as evidence: queued with the `picture` event that names it (same
    transaction), then fetched from DingTalk by bot.transport.photos while its download code is
    still valid, and stored content-addressed (bot.photos_store). The timeline reads it beside
    the event: stored (with its sha256) or lost."""

    __tablename__ = "photo_downloads"
    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issues.id", index=True)
    event_seq: int  # the `picture` event of that issue which carries the code
    msg_id: str
    code: str  # DingTalk's temporary downloadCode
    status: str = Field(default="pending", index=True)  # pending | stored | lost
    attempts: int = 0
    last_error: str | None = None
    sha256: str | None = Field(default=None, index=True)
    size: int | None = None
    content_type: str | None = None
    created_at: datetime
    next_attempt_at: datetime | None = None  # a retry waits until then
    claimed_until: datetime | None = None  # a worker holds the row until then
    finished_at: datetime | None = None

    __table_args__ = (UniqueConstraint("msg_id", "code", name="uq_photo_msg_code"),)


class GroupMember(SQLModel, table=True):
    """Someone known to be in a group beyond the org file's default (the people of the group's
    unit and of the units below it without a group of their own): listed under the group's
    `members:` (source "file"), or seen posting there (source "seen"). models/audience.py."""

    __tablename__ = "group_members"
    conversation_id: str = Field(primary_key=True)
    person_id: str = Field(primary_key=True)
    source: str = "seen"  # file | seen


class RateLimit(SQLModel, table=True):
    """A send limit shared by every process: one row per limited sender (a custom robot, keyed
    by a digest of its webhook), the times of its sends in the last window, and a block DingTalk
    imposed (a robot over 20 a minute is blocked for 10 minutes)."""

    __tablename__ = "rate_limits"
    key: str = Field(primary_key=True)
    sent: list[str] = Field(default_factory=_empty_list, sa_column=Column(JSON, nullable=False))  # ISO times
    blocked_until: datetime | None = None
