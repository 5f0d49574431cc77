"""The emulator's DingTalk contacts: the department tree and its people behind the oapi contact
endpoints (bot.contacts.api cites DingTalk's pages), answered with DingTalk's error shapes
(HTTP 200 and a non-zero errcode), and the contact events pushed on the Stream as EVENT frames.

It is no kinder than DingTalk: a wrong access_token is 40014, a missing or out-of-range field
400002, an unknown department 60003, an unknown user 60121; and an event reaches only a
connection that subscribed to EVENT frames."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.org import Org
from models.directory import AmbiguousUnit, Directory

if TYPE_CHECKING:
    from bot.sandbox.emulator import Emulator

ROOT = 1


@dataclass
class ContactUser:
    userid: str
    name: str
    depts: list[int]
    unionid: str = ""
    mobile: str = ""  # DingTalk answers it; the bot must never keep it

    def as_dingtalk(self) -> dict[str, Any]:
        return {
            "userid": self.userid,
            "unionid": self.unionid or f"union-{self.userid}",
            "name": self.name,
            "mobile": self.mobile,
            "dept_id_list": list(self.depts),
            "active": True,
        }


@dataclass
class Contacts:
    emulator: Emulator
    depts: dict[int, tuple[str, int | None]] = field(default_factory=lambda: {ROOT: ("沙盒区", None)})
    users: dict[str, ContactUser] = field(default_factory=dict)
    event_subscribers: int = 0  # connections opened asking for EVENT frames
    calls: dict[str, int] = field(default_factory=dict)  # path → times called
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))

    # --- the directory a test sets up ---

    def add_dept(self, name: str, parent: int = ROOT, dept_id: int | None = None) -> int:
        dept_id = dept_id or next(self._ids)
        self.depts[dept_id] = (name, parent)
        return dept_id

    def add_user(self, userid: str, name: str, *depts: int, mobile: str = "") -> ContactUser:
        user = ContactUser(userid, name, list(depts) or [ROOT], mobile=mobile)
        self.users[userid] = user
        return user

    def remove_user(self, userid: str) -> None:
        self.users.pop(userid, None)

    # --- the HTTP side ---

    def routes(self, app: web.Application) -> None:
        app.middlewares.append(self._subscriptions)
        for path, handler in (
            ("/topapi/v2/department/listsub", self._listsub),
            ("/topapi/v2/department/get", self._dept_get),
            ("/topapi/v2/user/list", self._user_list),
            ("/topapi/v2/user/get", self._user_get),
        ):
            app.router.add_post(path, self._guarded(handler))

    @web.middleware
    async def _subscriptions(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        if request.path == "/v1.0/gateway/connections/open":
            try:
                body = await request.json()  # aiohttp keeps the body: the gateway reads it again
                subs = body.get("subscriptions") or []
                if any(isinstance(s, dict) and s.get("type") == "EVENT" for s in subs):
                    self.event_subscribers += 1
            except (ValueError, AttributeError):
                pass
        return await handler(request)

    def _guarded(self, handler: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[..., Any]:
        async def serve(request: web.Request) -> web.Response:
            self.calls[request.path] = self.calls.get(request.path, 0) + 1
            if request.query.get("access_token", "") not in self.emulator._tokens:
                return web.json_response({"errcode": 40014, "errmsg": "不合法的access_token"})
            try:
                body = await request.json()
            except ValueError:
                body = None
            if not isinstance(body, dict):
                return web.json_response(_bad())
            return web.json_response({"errcode": 0, "errmsg": "ok", "request_id": uuid.uuid4().hex, **handler(body)})

        return serve

    def _listsub(self, body: dict[str, Any]) -> dict[str, Any]:
        parent = body.get("dept_id", ROOT)
        if not isinstance(parent, int) or parent not in self.depts:
            return _not_found_dept()
        subs = [{"dept_id": d, "name": n, "parent_id": p} for d, (n, p) in self.depts.items() if p == parent]
        return {"result": subs}

    def _dept_get(self, body: dict[str, Any]) -> dict[str, Any]:
        dept = body.get("dept_id")
        if not isinstance(dept, int):
            return _bad()
        if dept not in self.depts:
            return _not_found_dept()
        name, parent = self.depts[dept]
        return {"result": {"dept_id": dept, "name": name, "parent_id": parent}}

    def _user_list(self, body: dict[str, Any]) -> dict[str, Any]:
        dept, cursor, size = body.get("dept_id"), body.get("cursor"), body.get("size")
        if not (isinstance(dept, int) and isinstance(cursor, int) and isinstance(size, int)):
            return _bad()  # all three are required
        if not 1 <= size <= 100 or cursor < 0:
            return _bad()
        if dept not in self.depts:
            return _not_found_dept()
        members = sorted((u for u in self.users.values() if dept in u.depts), key=lambda u: u.userid)
        page = members[cursor : cursor + size]
        more = cursor + size < len(members)
        result: dict[str, Any] = {"has_more": more, "list": [u.as_dingtalk() for u in page]}
        if more:
            result["next_cursor"] = cursor + size
        return {"result": result}

    def _user_get(self, body: dict[str, Any]) -> dict[str, Any]:
        userid = body.get("userid")
        if not isinstance(userid, str) or not userid:
            return _bad()
        user = self.users.get(userid)
        if user is None:
            return {"errcode": 60121, "errmsg": "找不到该用户"}
        return {"result": user.as_dingtalk()}

    # --- contact events on the Stream ---

    async def push_event(self, event_type: str, data: dict[str, Any], event_id: str | None = None) -> str:
        """An EVENT frame as DingTalk pushes it; its eventId (give the same one to repeat it)."""
        if not self.event_subscribers:
            raise RuntimeError("no connection subscribed to EVENT frames: DingTalk would push nothing")
        event_id = event_id or uuid.uuid4().hex
        now_ms = int(time.time() * 1000)
        frame = {
            "specVersion": "1.0",
            "type": "EVENT",
            "headers": {
                "topic": "*",
                "messageId": f"event-{uuid.uuid4().hex[:12]}",
                "contentType": "application/json",
                "time": str(now_ms),
                "appId": "sandbox-app",
                "eventBornTime": str(now_ms),
                "eventCorpId": "dingsandboxcorp",
                "eventId": event_id,
                "eventType": event_type,
                "eventUnifiedAppId": "sandbox-unified-app",
            },
            "data": json.dumps({"timeStamp": str(now_ms), **data}, ensure_ascii=False),
        }
        await self.emulator._dispatch(frame)
        return str(frame["headers"]["messageId"])  # type: ignore[index]

    async def leave(self, userid: str, event_id: str | None = None) -> str:
        """The person leaves the organisation: gone from the contacts, and the event pushed."""
        self.remove_user(userid)
        return await self.push_event("user_leave_org", {"userId": [userid]}, event_id)


def _bad() -> dict[str, Any]:
    return {"errcode": 400002, "errmsg": "无效的参数"}


def _not_found_dept() -> dict[str, Any]:
    return {"errcode": 60003, "errmsg": "未找到部门"}


# Someone DingTalk knows and the org file does not: the sandbox's 同步通讯录 adds them.
NEWCOMER = ("n901", "新同事")


def seed_from_org(contacts: Contacts, org: Org) -> None:
    """The sandbox's DingTalk directory: a department per unit of the org file (same names, same
    tree, so a sync places people by name), everyone of the file in their unit, and a newcomer
    in the first village of the file, whom only DingTalk knows."""
    directory = Directory({u.id: u for u in org.units})
    dept_of: dict[int, int] = {}
    for unit in org.units:  # file order: a parent comes before its units
        parent = dept_of.get(unit.parent_id, ROOT) if unit.parent_id is not None else ROOT
        dept_of[unit.id] = contacts.add_dept(unit.name, parent=parent)
    for person in org.people:
        try:
            home = directory.resolve(person.unit)
        except AmbiguousUnit:
            home = None
        if home is not None:
            contacts.add_user(person.id, person.name, dept_of[home.id]).unionid = person.union_id or ""
    village = next((u for u in org.units if u.kind == "village"), None)
    if village is not None and NEWCOMER[0] not in contacts.users:
        contacts.add_user(*NEWCOMER, dept_of[village.id], mobile="13900009901")


def serve_contacts(app: web.Application, emulator: Emulator) -> Contacts:
    contacts = Contacts(emulator)
    contacts.routes(app)
    return contacts
