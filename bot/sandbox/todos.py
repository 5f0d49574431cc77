"""The emulator's DingTalk to-dos (待办): create and update as bot.transport.dingtalk_api cites
them, the tasks kept so that tests and the sandbox can read them.

No kinder than DingTalk: a wrong access token, a missing subject, a field of the wrong type, a
sourceId already used ("task exist") or an unknown task ("task not exist") is refused with
HTTP 400 and DingTalk's error shape {code, message, requestid}."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.sandbox.shapes import refusal

if TYPE_CHECKING:
    from bot.sandbox.emulator import Emulator

CREATE = "/v1.0/todo/users/{unionId}/tasks"
UPDATE = "/v1.0/todo/users/{unionId}/tasks/{taskId}"


@dataclass
class Todo:
    id: str
    union_id: str  # whose list it was created in
    source_id: str
    subject: str
    description: str
    due_time: int | None
    executor_ids: list[str]
    detail_url: dict[str, str] | None
    done: bool = False
    updates: list[dict[str, Any]] = field(default_factory=list)  # each update body, in order


@dataclass
class Todos:
    emulator: Emulator
    tasks: dict[str, Todo] = field(default_factory=dict)
    operators: list[str] = field(default_factory=list)  # the operatorId of every accepted call

    def of(self, union_id: str) -> list[Todo]:
        """The to-dos whose executor is this person."""
        return [t for t in self.tasks.values() if union_id in t.executor_ids]

    def routes(self, app: web.Application) -> None:
        app.router.add_post(CREATE, self._create)
        app.router.add_put(UPDATE, self._update)

    async def _create(self, request: web.Request) -> web.Response:
        body = await self._body(request, "todo.taskCreate.paramError")
        if isinstance(body, web.Response):
            return body
        bad = _types(body, "todo.taskCreate.paramError")
        subject = body.get("subject")
        if bad is None and (not isinstance(subject, str) or not subject.strip()):
            bad = refusal("todo.taskCreate.paramError", "subject is required")
        source = str(body.get("sourceId") or "")
        if bad is None and source and any(t.source_id == source for t in self.tasks.values()):
            bad = refusal("todo.taskCreate.paramError", "task exist")
        if bad is not None:
            return bad
        task = Todo(
            id=f"task{uuid.uuid4().hex[:20]}",
            union_id=request.match_info["unionId"],
            source_id=source,
            subject=str(subject),
            description=str(body.get("description") or ""),
            due_time=body.get("dueTime"),
            executor_ids=list(body.get("executorIds") or []),
            detail_url=body.get("detailUrl"),
        )
        self.tasks[task.id] = task
        self.operators.append(request.query.get("operatorId", ""))
        await self.emulator._notify()
        return web.json_response({"id": task.id, "subject": task.subject, "done": False, "sourceId": source})

    async def _update(self, request: web.Request) -> web.Response:
        body = await self._body(request, "todo.taskUpdate.paramError")
        if isinstance(body, web.Response):
            return body
        if (bad := _types(body, "todo.taskUpdate.paramError")) is not None:
            return bad
        task = self.tasks.get(request.match_info["taskId"])
        if task is None or task.union_id != request.match_info["unionId"]:
            return refusal("todo.taskUpdate.paramError", "task not exist")
        task.updates.append(dict(body))
        if "done" in body:
            task.done = bool(body["done"])
        if "dueTime" in body:
            task.due_time = body["dueTime"]
        if "subject" in body:
            task.subject = str(body["subject"])
        self.operators.append(request.query.get("operatorId", ""))
        await self.emulator._notify()
        return web.json_response({"result": True})

    async def _body(self, request: web.Request, code: str) -> dict[str, Any] | web.Response:
        if request.headers.get("x-acs-dingtalk-access-token", "") not in self.emulator._tokens:
            return refusal("InvalidAuthentication", "不合法的access_token")
        try:
            body = await request.json()
        except ValueError:
            body = None
        return body if isinstance(body, dict) else refusal(code, code)


def _types(body: dict[str, Any], code: str) -> web.Response | None:
    """The fields the bot sends, each of the type DingTalk's SDK declares."""
    due = body.get("dueTime")
    if due is not None and (not isinstance(due, int) or isinstance(due, bool) or due <= 0):
        return refusal(code, "dueTime is invalid")
    executors = body.get("executorIds")
    if executors is not None and not (isinstance(executors, list) and all(isinstance(e, str) and e for e in executors)):
        return refusal(code, code)
    if "done" in body and not isinstance(body["done"], bool):
        return refusal(code, code)
    url = body.get("detailUrl")
    if url is not None and not (
        isinstance(url, dict) and all(isinstance(url.get(k), str) and url[k] for k in ("appUrl", "pcUrl"))
    ):
        return refusal(code, code)
    return None


def serve_todos(app: web.Application, emulator: Emulator) -> Todos:
    todos = Todos(emulator)
    todos.routes(app)
    return todos
