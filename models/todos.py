"""The DingTalk to-dos (待办) of a case's 包案人: created on 交办 (due = the deadline), the due
time moved on 同意延期, done on 办结, open again on 重办 / 不满意. Each change is an outbox row
(models/outbox.py writes it, in the transaction of the event that causes it), so a to-do call
that fails is retried by the sender and never holds up the chat reply.

The rows of one to-do share a conversation id, so the sender sends them in order; an update
claimed while the create has not answered yet waits for the task id (bot/transport/todos.py).
A person without a union_id gets no to-do: DingTalk's to-do API knows people only by it."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from models import outbox
from models.clock import SHANGHAI
from models.masking import mask
from models.tables import Issue, Person, TodoTask

log = logging.getLogger(__name__)

KIND = "todo"  # the outbox kind
CASE_PAGE = "/dashboard/issues/{id}"  # the case page, under LIANDONG_PUBLIC_URL
SUBJECT_MAX = 1024  # DingTalk: 待办标题 at most 1024 characters
DUE_AT = time(18, 0)  # a deadline is a day: the to-do is due at the end of its working day


@dataclass(frozen=True)
class Change:
    """What one outbox row asks of DingTalk's to-do: create it, or update these fields."""

    todo_id: int  # the todo_tasks row
    op: str  # create | update
    union_id: str
    fields: dict[str, Any]

    def dump(self) -> str:
        return json.dumps(
            {"todo_id": self.todo_id, "op": self.op, "union_id": self.union_id, "fields": self.fields},
            ensure_ascii=False,
        )

    @staticmethod
    def load(text: str) -> Change:
        data = json.loads(text)
        return Change(int(data["todo_id"]), str(data["op"]), str(data["union_id"]), dict(data["fields"]))


def due_ms(deadline: date) -> int:
    """DingTalk's dueTime: milliseconds since the epoch."""
    return int(datetime.combine(deadline, DUE_AT, tzinfo=SHANGHAI).timestamp() * 1000)


def conversation(todo_id: int) -> str:
    """The ordering key the sender keeps one to-do's calls in order by."""
    return f"todo:{todo_id}"


def source_id(todo_id: int) -> str:
    """DingTalk's sourceId (接入业务系统侧的唯一标识id): a create sent twice is refused as
    `task exist`, never shown twice."""
    return f"liandong-todo-{todo_id}"


def created(session: Session, issue: Issue, owner: Person, at: datetime, cause: str) -> bool:
    """交办: a to-do for the 包案人 (a reassignment to the same person updates theirs instead)."""
    assert issue.id is not None
    for other in _todos(session, issue.id):  # the case changed hands: the former owner's is done
        if other.person_id != owner.id:
            _write(session, other, "update", {"done": True}, at, cause)
    if not owner.union_id:
        log.info("no to-do for #%s: its 包案人 has no union_id", issue.id)
        return False
    todo = _todo(session, issue.id, owner.id)
    fields: dict[str, Any] = {"subject": f"#{issue.id} {mask(issue.title)}"[:SUBJECT_MAX]}
    if issue.deadline is not None:
        fields["dueTime"] = due_ms(issue.deadline)
    if todo is not None:  # assigned to them again: open, with the new deadline
        return _write(session, todo, "update", {**fields, "done": False}, at, cause)
    todo = TodoTask(issue_id=issue.id, person_id=owner.id, union_id=owner.union_id, created_at=at)
    session.add(todo)
    session.flush()
    fields.update(description=mask(issue.text)[:4096], executorIds=[owner.union_id], path=CASE_PAGE.format(id=issue.id))
    return _write(session, todo, "create", fields, at, cause)


def updated(session: Session, issue: Issue, at: datetime, cause: str, **fields: Any) -> bool:
    """A change to the to-do of the case's current 包案人, if they have one."""
    if issue.id is None or issue.owner_id is None:
        return False
    todo = _todo(session, issue.id, issue.owner_id)
    return todo is not None and _write(session, todo, "update", fields, at, cause)


def _todos(session: Session, issue_id: int) -> list[TodoTask]:
    return list(session.execute(select(TodoTask).where(TodoTask.issue_id == issue_id)).scalars())  # type: ignore[arg-type]


def _todo(session: Session, issue_id: int, person_id: str) -> TodoTask | None:
    return next((t for t in _todos(session, issue_id) if t.person_id == person_id), None)


def _write(session: Session, todo: TodoTask, op: str, fields: dict[str, Any], at: datetime, cause: str) -> bool:
    assert todo.id is not None
    change = Change(todo.id, op, todo.union_id, fields)
    row = outbox.todo_row(
        outbox.todo_key(cause, todo.id), conversation(todo.id), change.dump(), [todo.person_id], created_at=at
    )
    return outbox.write(session, [row]) == 1
