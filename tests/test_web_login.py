"""The dashboard's DingTalk login against the emulator: a code from requestAuthCode is exchanged
server-side (topapi/v2/user/getuserinfo) and signs the person in with their unit's scope; a
forged, replayed or expired code, or someone not (or no longer) in the org, gets nothing."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import Session, select

from bot.config import Settings
from bot.sandbox.emulator import CORP_ID, Emulator
from bot.sandbox.login import CODE_TTL
from bot.web import create_web_app
from bot.web.auth import COOKIE, token_hash
from bot.web.layout import LOGOUT_PATH
from bot.web.login import GETUSERINFO, LOGIN_PATH, case_link, side_panel_link
from bot.web.sessions import SESSION_TTL
from models.clock import FrozenClock
from models.tables import Person, WebSession
from tests.web_seed import NOW
from tests.web_support import WebEnv

HANGBU_LEAD = "t102"  # 方卫东, township_lead of 航埠镇 in the sample org


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    emu = Emulator(clock=FrozenClock(NOW))
    server = TestServer(emu.app(), host="127.0.0.1")
    await server.start_server()
    emu.base_url = str(server.make_url("")).rstrip("/")
    yield emu
    emu.close()
    await server.close()


def login_app(env: WebEnv, emulator: Emulator) -> web.Application:
    settings = dataclasses.replace(env.app.settings, client_id=emulator.client_id, client_secret=emulator.client_secret)
    return create_web_app(
        dataclasses.replace(env.app, settings=settings), dingtalk_endpoint=emulator.base_url, corp_id=CORP_ID
    )


@pytest.fixture
async def dd(env: WebEnv, emulator: Emulator) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(login_app(env, emulator), host="127.0.0.1")) as c:
        yield c


async def sign_in(client: TestClient, code: str, next_path: str = "/dashboard") -> web.StreamResponse:
    return await client.post(LOGIN_PATH, data={"code": code, "next": next_path}, allow_redirects=False)


def cookie_of(client: TestClient) -> str | None:
    found = [c.value for c in client.session.cookie_jar if c.key == COOKIE]
    return found[0] if found else None


async def test_a_code_signs_in_a_township_lead_who_sees_only_their_township(
    dd: TestClient, env: WebEnv, emulator: Emulator
) -> None:
    hangbu, huayuan = env.seeded.of("w0v2"), env.seeded.of("w0v0")  # 航埠镇/新村, 花园街道/上洋村
    r = await sign_in(dd, emulator.login.mint(HANGBU_LEAD), f"/dashboard/issues/{hangbu}")
    assert r.status == 303 and r.headers["Location"] == f"/dashboard/issues/{hangbu}"
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=ld_") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert f"Max-Age={int(SESSION_TTL.total_seconds())}" in cookie
    assert emulator.login.exchanged == [HANGBU_LEAD]  # asked of DingTalk, server-side, once

    page = await dd.get(r.headers["Location"])
    assert page.status == 200 and "航埠镇 · 只读" in await page.text()
    assert (await dd.get(f"/dashboard/issues/{huayuan}")).status == 404
    assert (await dd.get(f"/api/issues/{hangbu}")).status == 200
    assert (await dd.get(f"/api/issues/{huayuan}")).status == 404
    listed = await (await dd.get("/api/issues?per_page=100")).json()
    units = {i["township"] for i in listed["items"]}
    assert units == {"航埠镇"}, units


async def test_a_forged_or_replayed_or_expired_code_is_refused_and_sets_nothing(
    dd: TestClient, emulator: Emulator
) -> None:
    for code in ("forged-code", "", "x" * 5000):
        r = await sign_in(dd, code)
        assert r.status == 401 and "Set-Cookie" not in r.headers
        assert "登录码无效" in await r.text()
    code = emulator.login.mint(HANGBU_LEAD)
    assert (await sign_in(dd, code)).status == 303
    dd.session.cookie_jar.clear()
    replayed = await sign_in(dd, code)
    assert replayed.status == 401 and "Set-Cookie" not in replayed.headers
    late = emulator.login.mint(HANGBU_LEAD)
    emulator.clock.advance(CODE_TTL + timedelta(seconds=1))  # type: ignore[attr-defined]
    expired = await sign_in(dd, late)
    assert expired.status == 401 and "Set-Cookie" not in expired.headers
    assert cookie_of(dd) is None and (await dd.get("/dashboard")).status == 401


async def test_the_emulator_answers_as_dingtalk_does(emulator: Emulator, dd: TestClient) -> None:
    """errcode 40014 for a foreign access_token, 40078 for a code it never issued."""
    http = dd.session
    url = f"{emulator.base_url}{GETUSERINFO}"
    async with http.post(url, params={"access_token": "nope"}, json={"code": "x"}) as r:
        assert (await r.json())["errcode"] == 40014
    token = "t-" + "1" * 8
    emulator._tokens.add(token)
    async with http.post(url, params={"access_token": token}, json={"code": "never-issued"}) as r:
        assert (await r.json()) == {"errcode": 40078, "errmsg": "不存在的临时授权码"}
    code = emulator.login.mint("d001")
    async with http.post(url, params={"access_token": token}, json={"code": code}) as r:
        body = await r.json()
    assert body["errcode"] == 0 and body["result"]["userid"] == "d001"


async def test_someone_not_or_no_longer_in_the_org_is_refused(dd: TestClient, env: WebEnv, emulator: Emulator) -> None:
    stranger = await sign_in(dd, emulator.login.mint("x999"))
    assert stranger.status == 403 and "Set-Cookie" not in stranger.headers
    assert "不在本区的组织名单中" in await stranger.text()

    staff = "t002"  # 杨秀英, township_staff of 航埠镇
    assert (await sign_in(dd, emulator.login.mint(staff))).status == 303
    assert (await dd.get("/dashboard")).status == 200
    _set_active(env, staff, False)
    try:
        # A session already open loses its rights on the next request, not at its expiry.
        assert (await dd.get("/dashboard")).status == 401
        assert (await dd.get("/api/issues")).status == 401
        dd.session.cookie_jar.clear()
        inactive = await sign_in(dd, emulator.login.mint(staff))
        assert inactive.status == 403 and "Set-Cookie" not in inactive.headers
    finally:
        _set_active(env, staff, True)


def _set_active(env: WebEnv, person_id: str, active: bool) -> None:
    with Session(env.app.engine) as s:
        person = s.get(Person, person_id)
        assert person is not None
        person.active = active
        s.add(person)
        s.commit()


async def test_a_session_ends_after_its_time(dd: TestClient, env: WebEnv, emulator: Emulator) -> None:
    assert (await sign_in(dd, emulator.login.mint(HANGBU_LEAD))).status == 303
    clock = env.app.dispatcher.clock
    assert isinstance(clock, FrozenClock)
    assert (await dd.get("/dashboard")).status == 200
    clock.advance(SESSION_TTL)
    try:
        assert (await dd.get("/dashboard")).status == 401
    finally:
        clock.advance(-SESSION_TTL)


def _sessions(env: WebEnv) -> list[WebSession]:
    with Session(env.app.engine) as s:
        return list(s.exec(select(WebSession)))


async def test_a_session_is_kept_in_the_database_for_every_process_and_sign_out_ends_it(
    dd: TestClient, env: WebEnv, emulator: Emulator
) -> None:
    """Two web apps on one database stand for two processes behind one proxy (issue 11)."""
    before = {w.token_sha256 for w in _sessions(env)}
    assert (await sign_in(dd, emulator.login.mint(HANGBU_LEAD))).status == 303
    token = cookie_of(dd)
    assert token is not None
    (row,) = [w for w in _sessions(env) if w.token_sha256 not in before]
    assert (row.token_sha256, row.person_id) == (token_hash(token), HANGBU_LEAD)  # the hash, never the token
    assert row.expires_at - row.created_at == SESSION_TTL

    cookie = {"Cookie": f"{COOKIE}={token}"}
    async with TestClient(TestServer(login_app(env, emulator), host="127.0.0.1")) as other:
        page = await other.get("/dashboard", headers=cookie)
        html = await page.text()
        assert page.status == 200 and "航埠镇 · 只读" in html  # signed in there without a code
        assert f'<form class="logout" method="post" action="{LOGOUT_PATH}">' in html

        out = await dd.post(LOGOUT_PATH, allow_redirects=False)
        assert out.status == 200 and "已退出登录" in await out.text()
        assert f"{COOKIE}=" in out.headers["Set-Cookie"] and "Max-Age=0" in out.headers["Set-Cookie"]
        assert cookie_of(dd) is None
        assert token_hash(token) not in {w.token_sha256 for w in _sessions(env)}
        # Ended for every process at once, even one still presenting the old cookie.
        assert (await other.get("/dashboard", headers=cookie)).status == 401
        assert (await dd.get("/dashboard", headers=cookie)).status == 401
        # Signing out again, or without any session, changes nothing and fails nothing.
        assert (await other.post(LOGOUT_PATH)).status == 200


async def test_a_sign_in_sweeps_expired_sessions_only(dd: TestClient, env: WebEnv, emulator: Emulator) -> None:
    clock = env.app.dispatcher.clock
    assert isinstance(clock, FrozenClock)
    assert (await sign_in(dd, emulator.login.mint(HANGBU_LEAD))).status == 303
    first = cookie_of(dd)
    assert first is not None
    clock.advance(SESSION_TTL)
    try:
        dd.session.cookie_jar.clear()
        assert (await sign_in(dd, emulator.login.mint("t002"))).status == 303
        live = {w.token_sha256: w.person_id for w in _sessions(env)}
        assert token_hash(first) not in live and list(live.values()) == ["t002"]
    finally:
        clock.advance(-SESSION_TTL)


async def test_dingtalk_unreachable_is_a_503_and_sets_nothing(dd: TestClient, emulator: Emulator) -> None:
    code = emulator.login.mint(HANGBU_LEAD)
    emulator.faults.fail_next[GETUSERINFO] = 1
    r = await sign_in(dd, code)
    assert r.status == 503 and "Set-Cookie" not in r.headers and "稍后再试" in await r.text()


async def test_only_a_dashboard_path_is_where_a_login_returns(dd: TestClient, emulator: Emulator) -> None:
    for bad in ("https://evil.example/x", "//evil.example/dashboard", "/api/export.csv", "javascript:alert(1)"):
        r = await sign_in(dd, emulator.login.mint(HANGBU_LEAD), bad)
        assert r.status == 303 and r.headers["Location"] == "/dashboard", bad


async def test_the_401_page_runs_the_login_inside_dingtalk_and_the_tokens_still_work(
    dd: TestClient, env: WebEnv
) -> None:
    r = await dd.get("/dashboard/issues/1", allow_redirects=False)
    html = await r.text()
    assert r.status == 401 and "令牌" in html
    assert f'data-corp-id="{CORP_ID}"' in html and "/dashboard/static/login.js" in html
    assert "script-src 'self' https://g.alicdn.com" in r.headers["Content-Security-Policy"]
    script = await dd.get("/dashboard/static/login.js")
    assert script.status == 200 and "requestAuthCode" in await script.text()
    assert (await dd.get("/dashboard", headers=env.auth("hangbu"))).status == 200
    via_link = await dd.get(f"/dashboard?token={env.tokens['huayuan']}", allow_redirects=False)
    assert via_link.status == 303 and via_link.headers["Set-Cookie"].startswith(f"{COOKIE}={env.tokens['huayuan']};")
    assert (await dd.get(f"/api/issues/{env.seeded.of('w0v2')}")).status == 404  # 花园街道's token


async def test_without_a_corp_id_there_is_no_dingtalk_login(client: TestClient) -> None:
    r = await client.get("/dashboard", allow_redirects=False)
    assert r.status == 401 and "login.js" not in await r.text()
    assert "script-src" not in r.headers["Content-Security-Policy"]
    assert (await client.post(LOGIN_PATH, data={"code": "x"})).status in (404, 405)


def test_case_links_open_in_dingtalks_side_panel() -> None:
    assert side_panel_link("https://a.example/x?y=1") == (
        "dingtalk://dingtalkclient/page/link?url=https%3A%2F%2Fa.example%2Fx%3Fy%3D1&pc_slide=true"
    )
    assert case_link("https://kb.example.gov.cn/", 12) == side_panel_link(
        "https://kb.example.gov.cn/dashboard/issues/12"
    )
    assert case_link(None, 12) is None


def test_the_public_url_and_corp_id_come_from_the_environment() -> None:
    env = {"LIANDONG_PUBLIC_URL": "https://kb.example.gov.cn/", "DINGTALK_CORP_ID": "dingcorp"}
    settings = Settings.from_env(environ=env)
    assert settings.public_url == "https://kb.example.gov.cn" and settings.corp_id == "dingcorp"
    assert Settings.from_env(environ={}).public_url is None


async def test_the_sandbox_page_posts_a_fresh_code_for_a_persona(dd: TestClient, emulator: Emulator) -> None:
    board = str(dd.make_url("/dashboard/issues"))
    async with dd.session.get(f"{emulator.base_url}/sandbox/login", params={"userid": "t101", "to": board}) as r:
        html = await r.text()
    action = re.search(r'action="([^"]+)"', html)
    code = re.search(r'name="code" value="([^"]+)"', html)
    nxt = re.search(r'name="next" value="([^"]+)"', html)
    assert action and code and nxt and action.group(1) == str(dd.make_url(LOGIN_PATH))
    r2 = await sign_in(dd, code.group(1), nxt.group(1))
    assert r2.status == 303 and r2.headers["Location"] == "/dashboard/issues"
    page = await dd.get("/dashboard")
    assert page.status == 200 and "花园街道 · 只读" in await page.text()  # 王五 leads 花园街道
    async with dd.session.get(f"{emulator.base_url}/sandbox/login", params={"userid": "t101", "to": "https://x"}) as r:
        assert r.status == 400
