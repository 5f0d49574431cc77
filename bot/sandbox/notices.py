"""The emulator's direct notices: work notifications (工作通知, the oapi asyncsend_v2) and DING
(/v1.0/robot/ding/send), as bot.transport.dingtalk_api cites them, each kept as a `Sent` of
channel "work" or "ding" so that tests and the sandbox's one-to-one view can read them.

No kinder than DingTalk:
- asyncsend_v2 answers in the oapi style, HTTP 200 with an errcode: a wrong access_token is
  40014; a missing or malformed agent_id, userid_list (a comma-separated string, at most 100
  userIds) or msg is refused (errcode 40035 here: DingTalk's global error table calls it
  不合法的参数; the exact code per field is not documented that we found) and a foreign agent_id
  40056 (不合法的agentid, same table). The send is asynchronous, so flow control never refuses
  the call: "给同一用户发相同内容消息一天仅允许一次" and at most 500 a day to one user (an internal
  app) filter users out silently; getsendresult names them (forbidden_user_id_list).
- ding/send answers in the OpenAPI style: a wrong token 401, a bad robotCode as the robot sends
  do, a missing receiverUserIdList, content or remindType (1, 2, 3) HTTP 400 {code, message}."""

from __future__ import annotations

import hashlib
import itertools
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.sandbox.shapes import refusal
from models.clock import local

if TYPE_CHECKING:
    from bot.sandbox.emulator import Emulator

WORK = "/topapi/message/corpconversation/asyncsend_v2"
WORK_RESULT = "/topapi/message/corpconversation/getsendresult"
DING = "/v1.0/robot/ding/send"
AGENT_ID = "3000000001"  # the sandbox app's AgentId
WORK_USERS_MAX = 100
WORK_PER_USER_DAY = 500  # an internal (企业) app's daily cap per user
BAD_PARAM = 40035
BAD_AGENT = 40056
BAD_TOKEN = 40014


@dataclass
class Notices:
    emulator: Emulator
    agent_ids: set[str] = field(default_factory=lambda: {AGENT_ID})
    forbidden: dict[int, list[str]] = field(default_factory=dict)  # task_id → users filtered out
    _seen: set[tuple[str, str, str]] = field(default_factory=set)  # (user, day, content digest)
    _per_day: defaultdict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    _tasks: itertools.count[int] = field(default_factory=lambda: itertools.count(700001))

    def forget(self) -> None:
        """Forget what was sent (a new test, the sandbox's reset): the daily limits start over."""
        self.forbidden.clear()
        self._seen.clear()
        self._per_day.clear()

    def routes(self, app: web.Application) -> None:
        app.router.add_post(WORK, self._work)
        app.router.add_post(WORK_RESULT, self._work_result)
        app.router.add_post(DING, self._ding)

    async def _work(self, request: web.Request) -> web.Response:
        if request.query.get("access_token", "") not in self.emulator._tokens:
            return _errcode(BAD_TOKEN, "不合法的access_token")
        body = await _json(request)
        agent = body.get("agent_id")
        if agent in (None, ""):
            return _errcode(BAD_PARAM, "缺少参数 agent_id")
        if str(agent) not in self.agent_ids:
            return _errcode(BAD_AGENT, "不合法的agentid")
        raw = body.get("userid_list")
        users = [u for u in raw.split(",") if u] if isinstance(raw, str) else []
        if not users or len(users) > WORK_USERS_MAX:
            return _errcode(BAD_PARAM, "userid_list 不合法")
        msg = body.get("msg")
        markdown = msg.get("markdown") if isinstance(msg, dict) and msg.get("msgtype") == "markdown" else None
        if not isinstance(markdown, dict) or not all(
            isinstance(markdown.get(k), str) and markdown[k] for k in ("title", "text")
        ):
            return _errcode(BAD_PARAM, "msg 不合法")
        task_id = next(self._tasks)
        day = local(self.emulator.clock.now()).date().isoformat()
        digest = hashlib.sha256(f"{markdown['title']}\n{markdown['text']}".encode()).hexdigest()
        reached, forbidden = [], []
        for u in dict.fromkeys(users):
            if (u, day, digest) in self._seen or self._per_day[(u, day)] >= WORK_PER_USER_DAY:
                forbidden.append(u)
                continue
            self._seen.add((u, day, digest))
            self._per_day[(u, day)] += 1
            reached.append(u)
        self.forbidden[task_id] = forbidden
        if reached:
            await self.emulator._record("work", None, reached, {"markdown": markdown})
        return web.json_response({"errcode": 0, "errmsg": "ok", "task_id": task_id, "request_id": uuid.uuid4().hex})

    async def _work_result(self, request: web.Request) -> web.Response:
        if request.query.get("access_token", "") not in self.emulator._tokens:
            return _errcode(BAD_TOKEN, "不合法的access_token")
        body = await _json(request)
        task = body.get("task_id")
        if not isinstance(task, int) or task not in self.forbidden:
            return _errcode(BAD_PARAM, "task_id 不合法")
        result = {"forbidden_user_id_list": self.forbidden[task], "invalid_user_id_list": []}
        return web.json_response({"errcode": 0, "errmsg": "ok", "send_result": result})

    async def _ding(self, request: web.Request) -> web.Response:
        if not self.emulator._authorized(request):
            return web.json_response({"code": "InvalidAuthentication", "message": "token"}, status=401)
        body = await _json(request)
        if (refused := self.emulator._robot_code_refused(body)) is not None:
            return refused
        users = body.get("receiverUserIdList")
        if not (isinstance(users, list) and users and all(isinstance(u, str) and u for u in users)):
            return refusal("invalidParameter.receiverUserIdList.empty", "receiverUserIdList 为空")
        content = body.get("content")
        if not isinstance(content, str) or not content.strip():
            return refusal("invalidParameter.content.empty", "content 为空")
        if body.get("remindType") not in (1, 2, 3):
            return refusal("invalidParameter.remindType.invalid", "remindType 无效")
        failed = {u: "invalidUser" for u in users if u in self.emulator.faults.invalid_users}
        reached = [u for u in users if u not in failed]
        if reached:
            await self.emulator._record("ding", None, reached, {"markdown": {"title": "DING", "text": content}})
        return web.json_response({"openDingId": uuid.uuid4().hex, "failedList": failed})


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _errcode(code: int, message: str) -> web.Response:
    return web.json_response({"errcode": code, "errmsg": message, "request_id": uuid.uuid4().hex})


def serve_notices(app: web.Application, emulator: Emulator) -> Notices:
    notices = Notices(emulator)
    notices.routes(app)
    return notices
