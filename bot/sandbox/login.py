"""The emulator's DingTalk login (H5 微应用 免登): the auth codes the JSAPI requestAuthCode would
hand a page, and their exchange `POST /topapi/v2/user/getuserinfo?access_token=…` {code}
(bot.web.login cites DingTalk's pages).

It is no kinder than DingTalk: a code lives five minutes by the emulator's clock and is good
once ("有效期为5分钟且只能使用一次"); an unknown, used or expired one is errcode 40078
不存在的临时授权码; a wrong access_token 40014. The sandbox mints a code for a persona, as
DingTalk would for the person who opened the page: `POST /sandbox/login/code {userid}`, or
the page `GET /sandbox/login?userid=…&to=<dashboard>` that posts it to the dashboard."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import web

if TYPE_CHECKING:
    from bot.sandbox.emulator import Emulator

CODE_TTL = timedelta(minutes=5)
LOGIN_PATH = "/dashboard/login/dingtalk"  # the dashboard's (bot.web.login), for the try-it page


@dataclass
class Login:
    emulator: Emulator
    codes: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # code → (userid, valid until)
    exchanged: list[str] = field(default_factory=list)  # the userids codes were exchanged for

    def mint(self, userid: str) -> str:
        """A code for this person, as requestAuthCode gives the page they opened."""
        code = uuid.uuid4().hex
        self.codes[code] = (userid, self.emulator.clock.now() + CODE_TTL)
        return code

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/topapi/v2/user/getuserinfo", self._getuserinfo)
        app.router.add_post("/sandbox/login/code", self._mint)
        app.router.add_get("/sandbox/login", self._try_page)

    async def _getuserinfo(self, request: web.Request) -> web.Response:
        if request.query.get("access_token", "") not in self.emulator._tokens:
            return web.json_response({"errcode": 40014, "errmsg": "不合法的access_token"})
        try:
            body: Any = await request.json()
        except ValueError:
            body = None
        code = body.get("code") if isinstance(body, dict) else None
        if not isinstance(code, str) or not code:
            return web.json_response({"errcode": 400002, "errmsg": "无效的参数"})
        found = self.codes.pop(code, None)  # once: the next exchange of it is refused
        if found is None or found[1] <= self.emulator.clock.now():
            return web.json_response({"errcode": 40078, "errmsg": "不存在的临时授权码"})
        userid = found[0]
        self.exchanged.append(userid)
        contact = self.emulator.contacts.users.get(userid)
        result = {
            "userid": userid,
            "unionid": (contact.unionid if contact else "") or f"union-{userid}",
            "name": contact.name if contact else userid,
            "device_id": uuid.uuid4().hex,
            "sys": False,
            "sys_level": 0,
            "associated_unionid": "",
        }
        return web.json_response({"errcode": 0, "errmsg": "ok", "request_id": uuid.uuid4().hex, "result": result})

    async def _mint(self, request: web.Request) -> web.Response:
        try:
            body: Any = await request.json()
        except ValueError:
            body = None
        userid = body.get("userid") if isinstance(body, dict) else None
        if not isinstance(userid, str) or not userid:
            return web.json_response({"error": "userid 必填"}, status=400)
        return web.json_response({"code": self.mint(userid)})

    async def _try_page(self, request: web.Request) -> web.Response:
        """A button that does what login.js does inside DingTalk: post a fresh code."""
        userid, to = request.query.get("userid", ""), request.query.get("to", "")
        target = urlsplit(to)
        if not userid or target.scheme != "http" or target.hostname not in ("127.0.0.1", "localhost"):
            return web.Response(status=400, text="需要 userid 和本机看板地址 to=http://127.0.0.1:…")
        action = f"{target.scheme}://{target.netloc}{LOGIN_PATH}"
        nxt = target.path + (f"?{target.query}" if target.query else "") if target.path.startswith("/dashboard") else ""
        html = (
            '<!doctype html><meta charset="utf-8"><title>钉钉登录(沙盒)</title>'
            f'<form method="post" action="{escape(action)}">'
            f'<input type="hidden" name="code" value="{self.mint(userid)}">'
            f'<input type="hidden" name="next" value="{escape(nxt or "/dashboard")}">'
            f"<button>以 {escape(userid)} 的身份进入看板</button></form>"
        )
        return web.Response(text=html, content_type="text/html")


def serve_login(app: web.Application, emulator: Emulator) -> Login:
    login = Login(emulator)
    login.routes(app)
    return login
