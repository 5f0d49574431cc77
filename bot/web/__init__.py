"""The web side of the bot: the read-only dashboard and the JSON API, on the same process and
event loop as `liandong run` (`--web HOST:PORT`)."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler
from multidict import MultiDict
from sqlalchemy import Engine
from sqlmodel import Session

from bot.app import App
from bot.photos_store import PhotoStore
from bot.web import api, health, login, metrics, pages, sessions
from bot.web.auth import COOKIE, Tokens, bearer, new_token
from bot.web.context import CONTEXT, PHOTOS, UNIT_KEY, WebContext, context, reader
from bot.web.layout import CSS_URL, LOGOUT_PATH, message_page
from models.clock import Clock
from models.directory import UnitInfo
from models.queries import find_sender

COOKIE_MAX_AGE = 30 * 86400  # a projector's browser keeps the dashboard for a month
ROUTES = (
    ("/api/stats", api.get_stats),
    ("/api/issues", api.get_issues),
    ("/api/issues/{id:[0-9]+}", api.get_issue),
    ("/api/issues/{id:[0-9]+}/photos/{sha256:[0-9a-f]+}", api.get_photo),
    ("/api/issues/{id:[0-9]+}/photos/{sha256:[0-9a-f]+}/thumb", api.get_photo),
    ("/api/export.xlsx", api.get_export_xlsx),
    ("/api/export.csv", api.get_export_csv),
    ("/api/openapi.json", api.get_openapi),
    ("/dashboard", pages.dashboard),
    ("/dashboard/issues", pages.issues),
    ("/dashboard/issues/{id:[0-9]+}", pages.issue_page),
    ("/dashboard/issues/{id:[0-9]+}/photos/{sha256:[0-9a-f]+}", api.get_photo),
    ("/dashboard/issues/{id:[0-9]+}/photos/{sha256:[0-9a-f]+}/thumb", api.get_photo),
    (CSS_URL, pages.stylesheet),
)
# Nothing in them comes from the data (/healthz and /metrics: counts and states, never a case).
# The DingTalk login and its script are how one gets in: they cannot ask for a token first.
# Signing out needs no proof of who one is: it only ends the session its cookie names.
PUBLIC = frozenset(
    {"/api/openapi.json", CSS_URL, "/", health.PATH, metrics.PATH, login.LOGIN_PATH, login.SCRIPT_URL, LOGOUT_PATH}
)
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


def _is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def _unauthorized(request: web.Request, presented: bool) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="liandong"'}
    reason = "令牌无效或已停用" if presented else "需要访问令牌"
    if _is_api(request):
        return api.error(401, "unauthorized", f"{reason}:请在 Authorization: Bearer 头中提供令牌", headers)
    text = f"{reason}。请使用管理员发给你的看板链接(…/dashboard?token=…),或让管理员用「liandong token new」生成令牌。"
    html = message_page("需要令牌", text)
    snippet = login.login_snippet(request)
    if snippet:  # inside DingTalk the script signs the person in; elsewhere it does nothing
        html = html.replace("</body>", snippet + "</body>", 1)
        headers["Content-Security-Policy"] = login.LOGIN_CSP
    return web.Response(text=html, status=401, content_type="text/html", charset="utf-8", headers=headers)


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Routing errors first (so an unknown path is 404 for everyone), then the token."""
    failure = request.match_info.http_exception
    if failure is not None:
        if _is_api(request):
            allow = {"Allow": failure.headers["Allow"]} if "Allow" in failure.headers else None
            if failure.status == 404:
                return api.error(404, "not_found", "没有这个接口,见 /api/openapi.json")
            return api.error(failure.status, "method_not_allowed", "只读接口,只接受 GET", allow)
        raise failure
    if request.path in PUBLIC:
        return await handler(request)
    header = bearer(request.headers.get("Authorization"))
    # A link in a DingTalk message cannot carry a header: pages also take ?token= once.
    from_query = None if _is_api(request) else request.query.get("token")
    token = header if header is not None else from_query if from_query is not None else request.cookies.get(COOKIE)
    unit = context(request).tokens.unit_for(token)
    if unit is None and token:
        unit = await _session_unit(request, token)
    if unit is None:
        return _unauthorized(request, token is not None)
    if header is None and from_query is not None:
        # Into an HttpOnly cookie, and out of the address bar, history and projector screen at once.
        rest = MultiDict(request.query)
        rest.popall("token")
        response = web.Response(status=303, headers={"Location": str(request.rel_url.with_query(rest))})
        response.set_cookie(
            COOKIE, token or "", max_age=COOKIE_MAX_AGE, path="/", httponly=True, samesite="Lax", secure=request.secure
        )
        return response
    request[UNIT_KEY] = unit
    return await handler(request)


async def _session_unit(request: web.Request, token: str) -> UnitInfo | None:
    """A DingTalk login's session: the person's unit now, so one who has left the organisation
    or moved is refused or rescoped on their next request."""
    ctx = context(request)
    now = ctx.now()

    def read(s: Session) -> int | None:
        person_id = sessions.person_of(s, token, now)
        person = find_sender(s, person_id, None, None) if person_id is not None else None
        return person.unit_id if person is not None else None

    unit_id = await ctx.read(read)
    return ctx.directory.units.get(unit_id) if unit_id is not None else None


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Cache-Control", "no-store")  # issue data stays off shared caches and disks
    if response.content_type == "text/html":
        response.headers.setdefault("Content-Security-Policy", PAGE_CSP)


async def _root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(location=str(request.rel_url.with_path("/dashboard")))


def create_web_app(
    app: App,
    clock: Clock | None = None,
    tokens: Tokens | None = None,
    receiver: health.ReceiverProbe | None = None,
    dingtalk_endpoint: str | None = None,
    corp_id: str | None = None,
    writes: health.WritesProbe | None = None,
) -> web.Application:
    """`dingtalk_endpoint` and `corp_id`: DingTalk for the login, where not the settings' (the
    sandbox's emulator stands in for both of DingTalk's hosts)."""
    directory = app.dispatcher.directory
    ctx = WebContext(
        reader(app.engine),
        directory,
        clock or app.dispatcher.clock,
        tokens if tokens is not None else Tokens.from_org(app.org.api_tokens, directory),
        app.engine,
    )
    web_app = web.Application(middlewares=[guard])
    web_app[CONTEXT] = ctx
    web_app[PHOTOS] = PhotoStore(app.settings.photos_dir)
    web_app.router.add_get("/", _root)
    for path, handler in ROUTES:
        web_app.router.add_get(path, handler)
    login.register(web_app, app.settings, dingtalk_endpoint, corp_id)
    health.register(web_app, health.Health(ctx.engine, app.job_runner(ctx.clock), ctx.clock, receiver, writes))
    metrics.register(web_app)
    web_app.on_response_prepare.append(_headers)
    if ctx.engine is not app.engine:
        web_app.on_cleanup.append(lambda _app: _dispose(ctx.engine))
    return web_app


async def _dispose(engine: Engine) -> None:
    engine.dispose()


def sandbox_web_app(
    app: App, clock: Clock | None = None, emulator_url: str | None = None, corp_id: str | None = None
) -> tuple[web.Application, str]:
    """The web app plus a district token that lives only in this process (for the sandbox
    page's dashboard link): nothing is written to the org file. With the emulator's address
    and CorpId, the DingTalk login asks the emulator."""
    tokens = Tokens.from_org(app.org.api_tokens, app.dispatcher.directory)
    token = new_token()
    tokens.add(token, app.dispatcher.directory.district)
    return create_web_app(app, clock, tokens, dingtalk_endpoint=emulator_url, corp_id=corp_id), token


async def start_site(web_app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(web_app)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
