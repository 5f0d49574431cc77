"""Sending an outbox row of kind "todo" (models/todos.py): a create or update of a DingTalk
to-do. The task id a create answers is stored before the row is marked sent, so a create sent
again after a crash finds it and calls nothing; an update claimed before its create has
answered is tried again later (counted, so one whose create failed for good gives up too)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, update
from sqlmodel import Session

from bot.transport.dingtalk_api import DingTalkApi, SendError
from bot.transport.worker import RunDb
from models.tables import TodoTask
from models.todos import Change, source_id

CHANNEL = "todo"
TODOS = TodoTask.__table__  # type: ignore[attr-defined]


async def send_todo(api: DingTalkApi, run_db: RunDb, engine: Engine, text: str, public_url: str | None) -> str:
    """Carry one to-do change to DingTalk; the channel, for the outbox row."""
    change = Change.load(text)
    task_id = await run_db(_task_id, engine, change.todo_id)
    if change.op == "create":
        if task_id:  # created before a crash cut the row's outcome off
            return CHANNEL
        task_id = await api.todo_create(change.union_id, _create_body(change, public_url))
        await run_db(_store, engine, change.todo_id, task_id)
        return CHANNEL
    if not task_id:
        raise SendError("to-do not created yet", retryable=True)
    await api.todo_update(change.union_id, task_id, change.fields)
    return CHANNEL


def _create_body(change: Change, public_url: str | None) -> dict[str, Any]:
    fields = dict(change.fields)
    path = fields.pop("path", "")
    body: dict[str, Any] = {"sourceId": source_id(change.todo_id), "creatorId": change.union_id, **fields}
    if public_url and path:  # no public address configured: a to-do without a link (optional)
        body["detailUrl"] = {"appUrl": public_url + path, "pcUrl": public_url + path}
    return body


def _task_id(engine: Engine, todo_id: int) -> str | None:
    with Session(engine) as session:
        todo = session.get(TodoTask, todo_id)
        return todo.task_id if todo else None


def _store(engine: Engine, todo_id: int, task_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(TODOS).where(TODOS.c.id == todo_id).values(task_id=task_id))
