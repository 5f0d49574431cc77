"""Signing in from inside DingTalk (H5 微应用 免登), and the links that open a case there.

The flow, as DingTalk documents it:
- The page runs the JSAPI `dd.runtime.permission.requestAuthCode({corpId})` (static/login.js);
  the code it gets "有效期为5分钟且只能使用一次" (requestAuthCode, 网页应用(H5微应用)免登授权).
- The server exchanges it with the app's own access token: 通过免登码获取用户信息
  `POST https://oapi.dingtalk.com/topapi/v2/user/getuserinfo?access_token=…` {code} →
  {errcode: 0, result: {userid, unionid, name, device_id, sys, sys_level, associated_unionid}};
  a code it does not know (forged, already used, expired) answers errcode 40078
  不存在的临时授权码. The topapi takes the token of 获取企业内部应用的access_token, which is what
  DingTalkApi.access_token gets (`POST /v1.0/oauth2/accessToken`), as bot.contacts.api notes.
- userid is the person's staffId: the Person must be active (models.queries.find_sender), and
  the session is scoped to their unit, looked up again on every request (bot.web.auth).

Links in messages take DingTalk's form `dingtalk://dingtalkclient/page/link?url=<urlencoded>&pc_slide=true`
(单聊相关跳转协议 / message-link-description: pc_slide=true opens the URL in the PC client's side
panel; on a phone it opens in DingTalk's own container), so the page runs where the JSAPI works."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
from aiohttp import web
from sqlmodel import Session

from bot.config import Settings
from bot.transport.dingtalk_api import Credentials, DingTalkApi, SendError
from bot.web import sessions
from bot.web.auth import COOKIE, new_token
from bot.web.context import context
from bot.web.layout import LOGOUT_PATH, message_page
from models.queries import find_sender

log = logging.getLogger(__name__)

LOGIN_PATH = "/dashboard/login/dingtalk"
SCRIPT_URL = "/dashboard/static/login.js"
SCRIPT_PATH = Path(__file__).parent / "static" / "login.js"
# DingTalk's JSAPI from its CDN, as DingTalk's own pages load it ("浏览器引入").
JSAPI_URL = "https://g.alicdn.com/dingding/dingtalk-jsapi/3.0.25/dingtalk.open.js"
GETUSERINFO = "/topapi/v2/user/getuserinfo"
UNKNOWN_CODE = 40078  # 不存在的临时授权码: forged, used once already, or past its five minutes
MAX_CODE_LENGTH = 200  # DingTalk's codes are 32-ish characters; longer is never one
# The 401 page runs DingTalk's JSAPI: scripts from here and DingTalk's CDN only, nothing inline.
LOGIN_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self' https://g.alicdn.com; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


class LoginRefused(Exception):
    """The line shown to the person (Chinese) and the status it comes with."""

    def __init__(self, status: int, line: str) -> None:
        super().__init__(line)
        self.status = status
        self.line = line


BAD_CODE = LoginRefused(401, "钉钉登录码无效或已用过,请从钉钉里重新打开链接。")
NOT_IN_ORG = LoginRefused(403, "你不在本区的组织名单中,不能查看看板。")
UNAVAILABLE = LoginRefused(503, "暂时无法向钉钉核实身份,请稍后再试。")


@dataclass(frozen=True)
class DingTalkUser:
    userid: str
    unionid: str | None


class CodeExchange:
    """Auth code → who it was issued to, asked of DingTalk with the app's credentials. Its own
    HTTP session, opened on first use inside the web app's event loop and closed with it."""

    def __init__(self, openapi_endpoint: str, oapi_endpoint: str, credentials: Credentials) -> None:
        self.openapi_endpoint = openapi_endpoint
        self.oapi = oapi_endpoint.rstrip("/")
        self.credentials = credentials
        self._http: aiohttp.ClientSession | None = None
        self._api: DingTalkApi | None = None
        self.timeout = aiohttp.ClientTimeout(total=10)

    def _client(self) -> tuple[aiohttp.ClientSession, DingTalkApi]:
        if self._http is None or self._api is None:
            self._http = aiohttp.ClientSession()
            self._api = DingTalkApi(self._http, self.openapi_endpoint, self.credentials)
        return self._http, self._api

    async def user_of(self, code: str) -> DingTalkUser:
        http, api = self._client()
        try:
            token = await api.access_token()
            async with http.post(
                f"{self.oapi}{GETUSERINFO}", params={"access_token": token}, json={"code": code}, timeout=self.timeout
            ) as resp:
                data: Any = await resp.json(content_type=None)
        except (SendError, aiohttp.ClientError, TimeoutError, ValueError) as e:
            log.warning("DingTalk login: cannot exchange the code (%s)", type(e).__name__)
            raise UNAVAILABLE from e
        if not isinstance(data, dict):
            raise UNAVAILABLE
        errcode = data.get("errcode")
        if errcode == UNKNOWN_CODE:
            raise BAD_CODE
        result = data.get("result")
        if errcode != 0 or not isinstance(result, dict) or not isinstance(result.get("userid"), str):
            log.warning("DingTalk login: getuserinfo answered errcode %s", errcode)
            raise UNAVAILABLE
        unionid = result.get("unionid")
        return DingTalkUser(result["userid"], unionid if isinstance(unionid, str) and unionid else None)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None


@dataclass
class DingTalkLogin:
    corp_id: str
    exchange: CodeExchange


LOGIN = web.AppKey("liandong_login", DingTalkLogin)


def register(
    web_app: web.Application, settings: Settings, endpoint: str | None = None, corp_id: str | None = None
) -> None:
    """The login route and script; without a CorpId and the app's credentials there is no
    DingTalk login (the JSAPI cannot ask for a code), and the tokens are the only way in.
    `endpoint` stands for both of DingTalk's hosts (the emulator serves both)."""
    web_app.router.add_get(SCRIPT_URL, _script)
    web_app.router.add_post(LOGOUT_PATH, post_logout)  # a token's cookie can be dropped too
    corp = corp_id or settings.corp_id
    if not (corp and settings.client_id and settings.client_secret):
        return
    credentials = Credentials(settings.client_id, settings.client_secret, settings.robot_code or "")
    exchange = CodeExchange(endpoint or settings.openapi_endpoint, endpoint or settings.oapi_endpoint, credentials)
    web_app[LOGIN] = DingTalkLogin(corp, exchange)
    web_app.router.add_post(LOGIN_PATH, post_login)
    web_app.on_cleanup.append(lambda _app: exchange.close())


def login_snippet(request: web.Request) -> str:
    """What the 401 page adds inside DingTalk: the JSAPI and our script, which post the code."""
    login = request.app.get(LOGIN)
    if login is None:
        return ""
    return (
        f'<script src="{JSAPI_URL}"></script>'
        f'<script src="{SCRIPT_URL}" data-corp-id="{escape(login.corp_id)}" data-action="{LOGIN_PATH}"></script>'
    )


def _refusal(refused: LoginRefused) -> web.Response:
    return web.Response(
        text=message_page("无法登录", refused.line),
        status=refused.status,
        content_type="text/html",
        charset="utf-8",
    )


def _local(next_path: object) -> str:
    """Only a path of the dashboard: never another host (an open redirect)."""
    if not isinstance(next_path, str):
        return "/dashboard"
    parts = urlsplit(next_path)
    if parts.scheme or parts.netloc or not parts.path.startswith("/dashboard") or next_path.startswith("//"):
        return "/dashboard"
    return next_path


async def post_login(request: web.Request) -> web.StreamResponse:
    login = request.app[LOGIN]
    form = await request.post()
    code = form.get("code")
    if not isinstance(code, str) or not code.strip() or len(code) > MAX_CODE_LENGTH:
        return _refusal(BAD_CODE)
    try:
        user = await login.exchange.user_of(code.strip())
    except LoginRefused as refused:
        return _refusal(refused)
    ctx = context(request)
    found = await ctx.read(lambda s: _active(s, user))
    # A unit created after this process loaded the directory has no scope here yet: refused.
    unit = ctx.directory.units.get(found[1]) if found else None
    if found is None or unit is None:
        return _refusal(NOT_IN_ORG)
    token, person_id, now = new_token(), found[0], ctx.now()
    await ctx.write(lambda s: sessions.start(s, token, person_id, now))
    response = web.Response(status=303, headers={"Location": _local(form.get("next"))})
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(sessions.SESSION_TTL.total_seconds()),
        path="/",
        httponly=True,
        samesite="Lax",
        secure=request.secure,
    )
    return response


async def post_logout(request: web.Request) -> web.Response:
    """The sign-out control of every page: the DingTalk session (if the cookie names one) ends
    for every process, and the cookie goes either way (a ?token= link's cookie too). Answered
    with a page rather than a redirect to the dashboard: inside DingTalk, the dashboard's 401
    page would sign the person straight back in."""
    token = request.cookies.get(COOKIE)
    if token:
        await context(request).write(lambda s: sessions.end(s, token))
    response = web.Response(
        text=message_page("已退出登录", "已退出看板。从钉钉里重新打开链接即可再次登录。"),
        content_type="text/html",
        charset="utf-8",
    )
    response.del_cookie(COOKIE, path="/")
    return response


def _active(session: Session, user: DingTalkUser) -> tuple[str, int] | None:
    person = find_sender(session, user.userid, user.unionid, None)
    return (person.id, person.unit_id) if person is not None else None


async def _script(request: web.Request) -> web.Response:
    return web.Response(
        text=SCRIPT_PATH.read_text(encoding="utf-8"),
        content_type="application/javascript",
        headers={"Cache-Control": "max-age=3600"},
    )


def side_panel_link(url: str) -> str:
    """A link that DingTalk opens in its side panel (PC) or its own container (phone)."""
    return "dingtalk://dingtalkclient/page/link?" + urlencode({"url": url, "pc_slide": "true"})


def case_link(public_url: str | None, issue_id: int) -> str | None:
    """The case page's link for a message, or None where no public address is set."""
    if not public_url:
        return None
    return side_panel_link(f"{public_url.rstrip('/')}/dashboard/issues/{issue_id}")
