"""The dashboard pages as HTML (the browser test looks at them rendered): the ?token= link
turning into an HttpOnly cookie, the numbers, the chart, the sortable ranking, the overdue
list, issue pages; and api_tokens in the org file."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from bot.org import SAMPLE, OrgError, load_org
from bot.web.auth import MAX_TOKEN_LENGTH, Tokens, token_hash
from tests.web_support import WebEnv, page


def stat(html: str, key: str) -> int:
    m = re.search(rf'data-stat="{key}">(\d+)<', html)
    assert m, key
    return int(m.group(1))


def ranking(html: str) -> list[str]:
    return [unescape(n) for n in re.findall(r'<tr data-township="([^"]+)"', html)]


async def test_a_token_link_sets_an_httponly_cookie_and_leaves_the_address_bar(client: TestClient, env: WebEnv) -> None:
    token = env.tokens["huayuan"]
    r = await client.get(f"/dashboard?from=2020-03-01&token={token}&to=2020-03-31", allow_redirects=False)
    assert r.status == 303
    assert r.headers["Location"] == "/dashboard?from=2020-03-01&to=2020-03-31"
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith(f"liandong_token={token};") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    followed = await client.get(r.headers["Location"])  # the client keeps the cookie, as a browser does
    assert followed.status == 200 and "花园街道 · 只读" in await followed.text()
    assert (await client.get("/api/export.csv")).status == 200  # the page's download links work too


async def test_without_a_token_the_page_explains_how_to_get_in(client: TestClient) -> None:
    for path in ("/dashboard", "/dashboard/issues", "/dashboard/issues/1", "/dashboard?token=ld_forged"):
        r = await client.get(path, allow_redirects=False)
        assert r.status == 401 and r.content_type == "text/html"
        assert "令牌" in await r.text() and "Set-Cookie" not in r.headers
    r = await client.get("/", allow_redirects=False)
    assert r.status == 302 and r.headers["Location"] == "/dashboard"
    css = await client.get("/dashboard/static/dashboard.css")
    assert css.status == 200 and css.content_type == "text/css"


async def test_the_overview_shows_the_counts_chart_ranking_and_overdue_list(client: TestClient, env: WebEnv) -> None:
    r = await client.get("/dashboard", headers=env.auth("district"))
    html = await r.text()
    assert (
        "script-src" not in r.headers["Content-Security-Policy"]
        and "default-src 'none'" in (r.headers["Content-Security-Policy"])
    )
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    stats = await (await client.get("/api/stats", headers=env.auth("district"))).json()
    d = stats["levels"]["district"]
    assert (stat(html, "district_assigned"), stat(html, "district_resolved")) == (d["assigned"], d["resolved"])
    assert stat(html, "tuesday_assigned") == d["tuesday_assigned"] == 3
    assert stat(html, "village_entered") == stats["levels"]["village"]["entered"] == 60
    assert unescape(re.search(r'id="paragraph">([^<]+)<', html).group(1)) == stats["paragraph"]  # type: ignore[union-attr]
    points = re.findall(r'<circle class="point (new|resolved)" data-week="([-\d]+)" data-value="(\d+)"', html)
    assert len(points) == 52
    assert sum(int(v) for k, _, v in points if k == "new") == 60  # all ten weeks lie within the 26
    assert points[-1][1] == "2020-05-11"  # the current week comes last
    assert ranking(html)[:2] == ["花园街道", "府山街道"]  # by resolution rate: 60%, then 50%
    overdue = re.search(r'<section class="card" id="overdue">.*?</section>', html, re.S).group(0)  # type: ignore[union-attr]
    assert '<span class="overdue">4</span>' in overdue and overdue.count("<tr data-issue=") == 4


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("sort=overdue&order=desc", "花园街道"),
        ("sort=name&order=asc", "府山街道"),
        ("sort=name&order=desc", "九华乡"),
        ("sort=entered&order=asc", "荷花街道"),
    ],
)
async def test_the_ranking_sorts_by_its_columns(client: TestClient, env: WebEnv, query: str, first: str) -> None:
    rows = ranking(await page(client, env, f"/dashboard?{query}"))
    assert rows[0] == first and len(rows) == 18


async def test_sorting_puts_townships_without_figures_last(client: TestClient, env: WebEnv) -> None:
    for order in ("asc", "desc"):
        rows = ranking(await page(client, env, f"/dashboard?sort=median_days&order={order}"))
        assert set(rows[:5]) == {"花园街道", "府山街道", "航埠镇", "石梁镇", "黄家街道"}


async def test_bad_dashboard_parameters_get_a_400_page(client: TestClient, env: WebEnv) -> None:
    assert "sort" in await page(client, env, "/dashboard?sort=bogus", status=400)
    assert "from" in await page(client, env, "/dashboard?from=2020-02-31", status=400)
    assert "航埠镇" in await page(client, env, "/dashboard/issues?unit=航埠镇", "huayuan", status=404)


async def test_the_issue_list_filters_and_pages(client: TestClient, env: WebEnv) -> None:
    html = await page(client, env, "/dashboard/issues?overdue=true&status=&q=")  # a form's empty fields
    assert html.count("<tr data-issue=") == 4 and "逾期" in html
    html = await page(client, env, "/dashboard/issues?per_page=25&page=2")
    assert html.count("<tr data-issue=") == 25 and "第 2 / 3 页 · 共 60 件" in html
    assert 'href="/dashboard/issues?per_page=25&amp;page=3"' in html


async def test_an_issue_page_has_the_timeline_and_pictures(client: TestClient, env: WebEnv) -> None:
    number = env.seeded.of("w0v2")
    html = await page(client, env, f"/dashboard/issues/{number}")
    assert html.count("<li data-seq=") == 8 and "照片(2 张)" in html
    assert "dl-code-0-a" not in html and html.count('data-photo="pending"') == 2  # being fetched, no raw codes
    assert "137****5678" in html and "13712345678" not in html
    assert "钱七" in html and "周二无会日" in html
    assert "未找到" in await page(client, env, f"/dashboard/issues/{number}", "huayuan", status=404)


# --- api_tokens in the org file ---------------------------------------------------------------


def org_text(entries: str) -> str:
    return SAMPLE.read_text(encoding="utf-8") + "\napi_tokens:\n" + entries


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


@pytest.mark.parametrize(
    ("entries", "needle", "reason"),
    [
        ('  - {sha256: "abc", unit: 花园街道}\n', '"abc"', "64 位十六进制"),
        (f'  - {{sha256: "{"a" * 64}", unit: 花园街道}}\n  - {{sha256: "{"A" * 64}", unit: 航埠}}\n', '"AAAA', "重复"),
        (f'  - {{sha256: "{"b" * 64}", unit: 不存在街道}}\n', "不存在街道", "未知单位"),
        (f'  - {{sha256: "{"c" * 64}", unit: 新村}}\n', "unit: 新村", "重名"),
        (f'  - {{sha256: "{"d" * 64}", unit: 花园街道, note: [1]}}\n', "note: [1]", "备注"),
        ("  - just-a-token\n", "just-a-token", "api_tokens 每项"),
    ],
)
def test_bad_api_tokens_are_refused_with_their_line(tmp_path: Path, entries: str, needle: str, reason: str) -> None:
    text = org_text(entries)
    path = tmp_path / "org.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(OrgError) as e:
        load_org(path)
    assert f"第{line_of(text, needle)}行" in str(e.value) and reason in str(e.value)


def test_tokens_resolve_only_by_their_hash(tmp_path: Path) -> None:
    path = tmp_path / "org.yaml"
    path.write_text(org_text(f'  - {{sha256: "{token_hash("secret").upper()}", unit: 花园/上洋}}\n'), encoding="utf-8")
    org = load_org(path)
    tokens = Tokens.from_org(org.api_tokens, org.directory)
    unit = tokens.unit_for("secret")
    assert unit is not None and unit.name == "上洋村"
    assert tokens.unit_for(token_hash("secret")) is None and tokens.unit_for("Secret") is None
    assert tokens.unit_for(None) is None and tokens.unit_for("") is None
    assert tokens.unit_for("x" * (MAX_TOKEN_LENGTH + 1)) is None


async def test_a_tuesday_assignment_is_tagged_as_counted_though_untagged(app, chat, clock) -> None:  # type: ignore[no-untyped-def]
    """A district 交办 made on a Tuesday counts as a 周二无会日办理件 without the word: the lists,
    the issue page and 查 say so too; one made on a Wednesday without the word is not one."""
    from datetime import datetime

    from aiohttp.test_utils import TestServer

    from bot.web import sandbox_web_app
    from models.clock import SHANGHAI

    def to_district(day: int, text: str) -> int:
        at = datetime(2020, 3, day, 9, 0, tzinfo=SHANGHAI)
        number = chat.say("v004", f"上报 {text}", at=at).issue_id
        assert number
        for who, line in (("v004", "上报 #{n} 需镇里出面"), ("t102", "研判 #{n} 需区里认定 风险:高")):
            assert chat.say(who, line.format(n=number)).outcome == "ok"
        assert chat.say("t102", f"上报 #{number} 请区里协调").outcome == "ok"
        return number

    tuesday, wednesday = to_district(2, "新村宅基地审批久拖未决"), to_district(2, "新村村道塌方影响通行")
    at_tuesday = datetime(2020, 3, 3, 10, 0, tzinfo=SHANGHAI)
    said = chat.say("d001", f"交办 #{tuesday} 区自然资源局 限5天", mentions=("p001",), at=at_tuesday)
    assert "周二无会日办理件" in said.reply
    at_wednesday = datetime(2020, 3, 4, 10, 0, tzinfo=SHANGHAI)
    chat.say("d001", f"交办 #{wednesday} 区自然资源局 限5天", mentions=("p001",), at=at_wednesday)
    card = chat.say("d001", f"查 #{tuesday}").reply
    assert "周二无会日" in card
    assert "周二无会日" not in chat.say("d001", f"查 #{wednesday}").reply

    web_app, token = sandbox_web_app(app, clock)
    async with TestClient(TestServer(web_app, host="127.0.0.1")) as client:
        auth = {"Authorization": f"Bearer {token}"}
        listed = await (await client.get("/dashboard/issues", headers=auth)).text()
        rows = dict(re.findall(r'<tr data-issue="(\d+)">(.*?)</tr>', listed, re.S))
        assert 'class="tag tuesday"' in rows[str(tuesday)] and 'class="tag tuesday"' not in rows[str(wednesday)]
        shown = await (await client.get(f"/dashboard/issues/{tuesday}", headers=auth)).text()
        assert "<dt>周二无会日</dt><dd>是</dd>" in shown
        api = await (await client.get("/api/issues", headers=auth)).json()
        assert {i["id"]: i["tuesday"] for i in api["items"]} == {tuesday: True, wednesday: False}
        overview = await (await client.get("/dashboard", headers=auth)).text()
        assert stat(overview, "tuesday_assigned") == 1  # the count these tags agree with
