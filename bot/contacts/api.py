"""DingTalk's contact API (the older server API on oapi.dingtalk.com, `topapi`), read-only.

- 获取部门列表 `POST /topapi/v2/department/listsub?access_token=…` {dept_id} → result [{dept_id, name,
  parent_id}]: one level only, so the tree is walked from the root (dept_id 1).
  (https://open.dingtalk.com/document/orgapp/obtain-the-department-list-v2)
- 获取部门用户详情 `POST /topapi/v2/user/list` {dept_id, cursor, size ≤ 100} → result {has_more,
  next_cursor, list: [{userid, unionid, name, dept_id_list, mobile, …}]}: cursor paging, start at 0.
  (https://open.dingtalk.com/document/orgapp/queries-the-complete-information-of-a-department-user)
- 查询用户详情 `POST /topapi/v2/user/get` {userid} and 获取部门详情 `POST /topapi/v2/department/get`
  {dept_id}, for the contact events.
- Errors come as HTTP 200 with a non-zero errcode: 40014 不合法的access_token, 400002 无效的参数,
  60003 未找到部门, 60121 找不到该用户, 88 with sub_code for missing permissions.

The access_token is the app's: the topapi pages say to get it from 获取企业内部应用的access_token,
which documents both `GET /gettoken` and `POST /v1.0/oauth2/accessToken` for an internal app; the
bot's DingTalkApi.access_token (the latter) is passed in. Only userid, unionid, name and the
department ids are read: the mobile number is not needed and is never kept or logged."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

ROOT_DEPT = 1  # DingTalk's root department
PAGE_SIZE = 100  # user/list's largest page
NOT_FOUND = (60003, 60121)  # 未找到部门, 找不到该用户


class ContactError(Exception):
    """DingTalk's contact API did not answer as it should (the reason has no personal data)."""


@dataclass(frozen=True)
class Dept:
    id: int
    name: str
    parent_id: int | None


@dataclass(frozen=True)
class User:
    userid: str
    name: str
    unionid: str | None = None
    dept_ids: tuple[int, ...] = ()


@dataclass
class Snapshot:
    """The whole contact list as DingTalk gave it: every department and everyone in one."""

    depts: dict[int, Dept] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)


class ContactApi:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        oapi_endpoint: str,
        token: Callable[[], Awaitable[str]],
        timeout_s: float = 10,
    ) -> None:
        self.http = http
        self.base = oapi_endpoint.rstrip("/")
        self.token = token
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.calls = 0

    async def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        token = await self.token()
        self.calls += 1
        try:
            async with self.http.post(
                f"{self.base}{path}", params={"access_token": token}, json=body, timeout=self.timeout
            ) as resp:
                status = resp.status
                data = await resp.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as e:
            raise ContactError(f"{path}: {type(e).__name__}") from e
        if not isinstance(data, dict):
            raise ContactError(f"{path}: HTTP {status}, no JSON object")
        code = data.get("errcode")
        if code not in (0, "0"):
            raise ContactError(f"{path}: errcode {code} {str(data.get('errmsg') or '')[:60]}")
        return data

    async def departments(self) -> dict[int, Dept]:
        """The whole tree, breadth first from the root (listsub answers one level)."""
        found = {ROOT_DEPT: Dept(ROOT_DEPT, "", None)}
        todo = [ROOT_DEPT]
        while todo:
            parent = todo.pop(0)
            data = await self._call("/topapi/v2/department/listsub", {"dept_id": parent})
            for d in data.get("result") or []:
                dept = Dept(int(d["dept_id"]), str(d.get("name") or ""), int(d.get("parent_id") or parent))
                if dept.id not in found:
                    found[dept.id] = dept
                    todo.append(dept.id)
        return found

    async def users(self, dept_id: int) -> list[User]:
        """Everyone directly in a department, page by page."""
        users: list[User] = []
        cursor = 0
        while True:
            body = {"dept_id": dept_id, "cursor": cursor, "size": PAGE_SIZE}
            result = (await self._call("/topapi/v2/user/list", body)).get("result") or {}
            users.extend(_user(u) for u in result.get("list") or [])
            if not result.get("has_more"):
                return users
            cursor = int(result["next_cursor"])

    async def user(self, userid: str) -> User | None:
        """One person, or None when DingTalk does not know them (any more)."""
        try:
            data = await self._call("/topapi/v2/user/get", {"userid": userid})
        except ContactError as e:
            if any(f"errcode {c}" in str(e) for c in NOT_FOUND):
                return None
            raise
        return _user(data.get("result") or {})

    async def department(self, dept_id: int) -> Dept | None:
        try:
            data = await self._call("/topapi/v2/department/get", {"dept_id": dept_id})
        except ContactError as e:
            if any(f"errcode {c}" in str(e) for c in NOT_FOUND):
                return None
            raise
        d = data.get("result") or {}
        return Dept(int(d.get("dept_id") or dept_id), str(d.get("name") or ""), d.get("parent_id"))

    async def snapshot(self) -> Snapshot:
        snap = Snapshot(depts=await self.departments())
        for dept_id in snap.depts:
            for u in await self.users(dept_id):
                known = snap.users.get(u.userid)
                ids = tuple(dict.fromkeys((*(known.dept_ids if known else ()), *u.dept_ids, dept_id)))
                snap.users[u.userid] = User(u.userid, u.name, u.unionid, ids)
        return snap


def _user(u: dict[str, Any]) -> User:
    if not u.get("userid"):
        raise ContactError("user without userid")
    ids = tuple(int(d) for d in u.get("dept_id_list") or [])
    return User(str(u["userid"]), str(u.get("name") or ""), str(u["unionid"]) if u.get("unionid") else None, ids)
