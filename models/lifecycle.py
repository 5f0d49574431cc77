"""The one way an issue changes: append an event to its hash chain and fold it into the
projection and into the kept counts (models.facts). `apply` is pure, so replaying the events
rebuilds the issue (used by verify)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session

from models import facts
from models.events import EVENT_KINDS, FILE_KINDS, Kind
from models.tables import Issue, IssueEvent
from models.vocabulary import Status

# What 改 may correct; anything else changes only through its own verb.
AMENDABLE = (
    "township_id",
    "village_id",
    "category",
    "title",
    "litigation_risk",
    "litigation_suspected",
    "requested_deadline",
)


def apply(issue: Issue, kind: str, data: dict[str, Any], at: datetime) -> None:
    if kind in FILE_KINDS:
        return
    issue.updated_at = at
    if kind == Kind.CREATED:
        for key in (
            "title",
            "text",
            "level",
            "unit_id",
            "township_id",
            "village_id",
            "category",
            "litigation_risk",
            "phones",
            "has_id_number",
            "reporter_id",
            "source_msg_id",
        ):
            setattr(issue, key, data[key])
        issue.requested_deadline = _date(data.get("requested_deadline"))
        issue.litigation_suspected = bool(data.get("litigation_suspected"))
        issue.status, issue.created_at = Status.SUBMITTED, at
    elif kind in (Kind.ESCALATED, Kind.RETURNED):
        issue.level, issue.unit_id, issue.status = data["to_level"], data["unit_id"], Status.SUBMITTED
        issue.owner_id = issue.department_id = issue.deadline = issue.extension_days = None
        issue.tuesday = False
    elif kind == Kind.REVIEWED:
        issue.status, issue.opinion = Status.REVIEWED, data["opinion"]
        issue.risk = data.get("risk") or issue.risk
        if data.get("litigation_risk"):  # the 研判 says 行政败诉风险: 是, no longer 疑似
            issue.litigation_risk, issue.litigation_suspected = True, False
        elif data.get("litigation_cleared"):
            issue.litigation_risk, issue.litigation_suspected = False, False
    elif kind == Kind.ASSIGNED:
        issue.status, issue.owner_id, issue.department_id = Status.ASSIGNED, data["owner_id"], data.get("department_id")
        issue.deadline = _date(data.get("deadline"))
        issue.tuesday = bool(data.get("tuesday"))
    elif kind == Kind.RESOLVED:
        issue.status, issue.resolved_at, issue.result = Status.RESOLVED, at, data["result"]
        issue.resolved_days = (at - issue.created_at).total_seconds() / 86400
    elif kind == Kind.REOPENED:
        issue.status, issue.resolved_at, issue.resolved_days = Status.ASSIGNED, None, None
    elif kind == Kind.EXTENSION_REQUESTED:
        issue.extension_days = data["days"]
    elif kind == Kind.EXTENSION_APPROVED:
        issue.deadline, issue.extension_days = _date(data["deadline"]), None
    elif kind == Kind.EXTENSION_REJECTED:  # no request pending any more; the deadline stays
        issue.extension_days = None
    elif kind == Kind.CLOSED:
        issue.status, issue.duplicate_of = Status.CLOSED, data["duplicate_of"]
    elif kind == Kind.AMENDED:  # 改: the sender or a lead corrects what intake understood
        for key, value in data["fields"].items():
            if key not in AMENDABLE:
                raise ValueError(f"field {key} cannot be amended")
            setattr(issue, key, _date(value) if key == "requested_deadline" else value)
    elif kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {kind}")


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def event_hash(ev: IssueEvent) -> str:
    return chain_hash(
        {
            "issue_id": ev.issue_id,
            "seq": ev.seq,
            "kind": ev.kind,
            "actor_id": ev.actor_id,
            "at": ev.at,
            "level": ev.level,
            "unit_id": ev.unit_id,
            "tuesday": ev.tuesday,
            "msg_id": ev.msg_id,
            "data": ev.data,
            "prev_hash": ev.prev_hash,
        }
    )


def chain_hash(row: dict[str, Any]) -> str:
    """The hash of an event's fields (its `at` a datetime), chained through `prev_hash`."""
    body = {**row, "at": _utc(row["at"])}
    raw = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


def _utc(at: datetime) -> str:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def record(
    session: Session,
    issue: Issue,
    kind: str,
    *,
    actor_id: str,
    at: datetime,
    msg_id: str,
    data: dict[str, Any] | None = None,
    tuesday: bool = False,
) -> None:
    """Apply one event to the issue, append it to the chain and fold it into the kept counts
    (no commit: all three land in the caller's transaction)."""
    data = data or {}
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {kind}")
    EVENT_KINDS[kind].check(data)
    before = facts.Before.of(issue) if issue.event_count else None
    apply(issue, kind, data, at)
    if issue.id is None:  # a new issue needs its number before its first event
        session.add(issue)
        session.flush()
    assert issue.id is not None
    row: dict[str, Any] = {
        "issue_id": issue.id,
        "seq": issue.event_count + 1,
        "kind": kind,
        "actor_id": actor_id,
        "at": at,
        "level": issue.level,
        "unit_id": issue.unit_id,
        "tuesday": tuesday,
        "msg_id": msg_id,
        "data": data,
        "prev_hash": issue.head_hash,
    }
    row["hash"] = chain_hash(row)
    issue.event_count, issue.head_hash = row["seq"], row["hash"]
    session.add(issue)
    # The event is append-only: a plain insert, without the ORM's object bookkeeping.
    session.execute(insert(EVENTS), [row])
    facts.follow(session, issue, before, row)


EVENTS = IssueEvent.__table__  # type: ignore[attr-defined]


def new_issue(data: dict[str, Any], at: datetime) -> Issue:
    """An empty projection that the `created` event fills."""
    return Issue(
        unit_id=data["unit_id"],
        reporter_id=data["reporter_id"],
        created_at=at,
        updated_at=at,
        source_msg_id=data["source_msg_id"],
    )


def replay(events: list[IssueEvent]) -> Issue:
    first = events[0]
    issue = new_issue(first.data, first.at)
    for ev in events:
        apply(issue, ev.kind, ev.data, ev.at)
    return issue
