"""The JSON API against seeded chat traffic: tokens and 401s, subtree scope and 404s, paging,
filters, the issue timeline, and /api/stats equal to the chat's 统计 for the same unit and period."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import Session, select

from bot.web import ROUTES
from bot.web.openapi import document
from models.counts import Period, count_levels
from models.tables import Issue
from tests.web_seed import ID_NUMBER, NOW
from tests.web_support import WebEnv

API_PATHS = ["/api/stats", "/api/issues", "/api/issues/1", "/api/export.xlsx", "/api/export.csv"]
RAW_PHONE = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")
HASHES = re.compile(r'"(?:prev_)?hash":"[0-9a-f]*"')  # hex digests may hold 11-digit runs


def unhashed(raw: str) -> str:
    return HASHES.sub("", raw)


async def get_json(client: TestClient, path: str, env: WebEnv, key: str = "district", status: int = 200) -> Any:
    r = await client.get(path, headers=env.auth(key))
    assert r.status == status, (path, r.status, await r.text())
    assert r.content_type == "application/json"
    return await r.json()


def all_issues(env: WebEnv) -> list[Issue]:
    with Session(env.app.engine) as s:
        return list(s.exec(select(Issue)))


def unit_id(env: WebEnv, name: str) -> int:
    unit = env.app.dispatcher.directory.resolve(name)
    assert unit is not None
    return unit.id


# --- 401 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", API_PATHS)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer ld_wrong"},
        {"Authorization": "Basic ZDAwMTpzZWNyZXQ="},
        {"Authorization": "Bearer"},
    ],
    ids=["none", "wrong", "basic", "empty"],
)
async def test_no_token_or_a_wrong_one_is_401(client: TestClient, path: str, headers: dict[str, str]) -> None:
    r = await client.get(path, headers=headers)
    assert r.status == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    body = await r.json()
    assert body["error"] == "unauthorized" and "令牌" in body["message"]


async def test_a_wrong_bearer_is_not_rescued_by_a_good_cookie(client: TestClient, env: WebEnv) -> None:
    client.session.cookie_jar.update_cookies({"liandong_token": env.tokens["district"]})
    assert (await client.get("/api/stats", headers={"Authorization": "Bearer nope"})).status == 401
    assert (await client.get("/api/stats")).status == 200  # the cookie alone is a credential


async def test_query_token_is_not_accepted_by_the_api(client: TestClient, env: WebEnv) -> None:
    # A ?token= ends up in proxy and server logs; only the dashboard's first visit takes it.
    assert (await client.get(f"/api/stats?token={env.tokens['district']}")).status == 401


async def test_openapi_is_public_and_unknown_api_paths_are_json_404(client: TestClient) -> None:
    r = await client.get("/api/openapi.json")
    assert r.status == 200 and (await r.json())["openapi"].startswith("3.")
    r = await client.get("/api/nothing-here")
    assert r.status == 404 and (await r.json())["error"] == "not_found"
    r = await client.post("/api/stats")
    assert r.status == 405 and "GET" in r.headers["Allow"]


# --- scope and 404 ---------------------------------------------------------------------------


async def test_a_township_token_cannot_see_another_townships_issue(client: TestClient, env: WebEnv) -> None:
    hangbu_issue = env.seeded.of("w0v2")  # 航埠镇/新村
    huayuan_issue = env.seeded.of("w0v0")  # 花园街道/上洋村
    gone = await get_json(client, f"/api/issues/{hangbu_issue}", env, "huayuan", 404)
    missing = await get_json(client, "/api/issues/999999", env, "huayuan", 404)
    assert gone.keys() == missing.keys() == {"error", "message"}  # the two are not told apart
    assert (await get_json(client, f"/api/issues/{huayuan_issue}", env, "huayuan"))["id"] == huayuan_issue
    assert (await get_json(client, f"/api/issues/{hangbu_issue}", env, "hangbu"))["id"] == hangbu_issue
    assert (await get_json(client, f"/api/issues/{hangbu_issue}", env, "district"))["id"] == hangbu_issue


@pytest.mark.parametrize(
    ("key", "township", "village"),
    [("huayuan", "花园街道", None), ("hangbu", "航埠镇", None), ("shangyang", "花园街道", "花园街道/上洋村")],
)
async def test_lists_hold_exactly_the_tokens_subtree(
    client: TestClient, env: WebEnv, key: str, township: str, village: str | None
) -> None:
    page = await get_json(client, "/api/issues?per_page=100", env, key)
    tid = unit_id(env, township)
    expected = {
        i.id
        for i in all_issues(env)
        if i.township_id == tid and (village is None or i.village_id == unit_id(env, village))
    }
    assert expected and {i["id"] for i in page["items"]} == expected and page["total"] == len(expected)


async def test_the_district_sees_everything_and_a_unit_outside_the_scope_is_404(
    client: TestClient, env: WebEnv
) -> None:
    page = await get_json(client, "/api/issues?per_page=100", env)
    assert page["total"] == len(all_issues(env)) == 60
    body = await get_json(client, "/api/issues?unit=航埠镇", env, "huayuan", 404)
    assert "航埠镇" in body["message"]
    await get_json(client, "/api/issues?unit=不存在的村", env, "district", 404)
    await get_json(client, "/api/issues?unit=新村", env, "district", 404)  # two townships have one
    await get_json(client, "/api/export.csv?unit=航埠镇", env, "huayuan", 404)


# --- paging ----------------------------------------------------------------------------------


async def test_paging_covers_every_issue_once_newest_first(client: TestClient, env: WebEnv) -> None:
    first = await get_json(client, "/api/issues?per_page=7", env)
    assert (first["page"], first["per_page"], first["total"], first["pages"]) == (1, 7, 60, 9)
    seen: list[int] = []
    for n in range(1, first["pages"] + 1):
        page = await get_json(client, f"/api/issues?per_page=7&page={n}", env)
        assert len(page["items"]) == (7 if n < 9 else 4)
        seen += [i["id"] for i in page["items"]]
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == 60
    beyond = await get_json(client, "/api/issues?per_page=7&page=10", env)
    assert beyond["items"] == [] and beyond["total"] == 60
    default = await get_json(client, "/api/issues", env)
    assert default["per_page"] == 20 and len(default["items"]) == 20


@pytest.mark.parametrize(
    "query",
    ["page=0", "page=-1", "page=abc", "page=1.5", "page=10001", "per_page=0", "per_page=101", "per_page=", "page=٣"],
)
async def test_bad_paging_is_400(client: TestClient, env: WebEnv, query: str) -> None:
    body = await get_json(client, f"/api/issues?{query}", env, status=400)
    assert body["error"] == "bad_request"


# --- filters ---------------------------------------------------------------------------------


async def test_filters(client: TestClient, env: WebEnv) -> None:
    today = NOW.date()
    issues = all_issues(env)

    async def ids(query: str, key: str = "district") -> set[int]:
        return {i["id"] for i in (await get_json(client, f"/api/issues?per_page=100&{query}", env, key))["items"]}

    assert await ids("status=resolved") == {i.id for i in issues if i.status == "resolved"} != set()
    assert await ids("level=district") == {i.id for i in issues if i.level == "district"} != set()
    overdue = {i.id for i in issues if i.status != "resolved" and i.deadline and i.deadline < today}
    assert overdue and await ids("overdue=true") == overdue
    assert await ids("overdue=false") == {i.id for i in issues} - overdue
    assert await ids("overdue=true", "hangbu") == set()  # 航埠镇's district case is not yet due
    assert await ids("q=宅基地") == {i.id for i in issues if "宅基地" in i.text} != set()
    assert await ids("q=100%") == set()  # LIKE wildcards are literal
    assert await ids("unit=上洋村") == {i.id for i in issues if i.village_id == unit_id(env, "花园街道/上洋村")}
    assert await ids("unit=石梁镇/新村") == {i.id for i in issues if i.village_id == unit_id(env, "石梁镇/新村")}
    april = {
        i.id for i in issues if "2020-04-01" <= i.created_at.astimezone(NOW.tzinfo).date().isoformat() <= "2020-04-30"
    }
    assert april and await ids("from=2020-04-01&to=2020-04-30") == april
    both = await ids("status=assigned&level=township&unit=花园街道&overdue=true")
    assert both == {i.id for i in issues if i.id in overdue and i.level == "township"} != set()


@pytest.mark.parametrize(
    "query",
    [
        "status=done",
        "level=city",
        "overdue=yes",
        "overdue=1",
        "from=2020-13-01",
        "from=20200101",
        "to=2020-02-30",
        "q=",
        "unit=",
    ],
)
async def test_bad_filters_are_400(client: TestClient, env: WebEnv, query: str) -> None:
    await get_json(client, f"/api/issues?{query}", env, status=400)


# --- one issue -------------------------------------------------------------------------------


async def test_an_issue_has_its_fields_and_full_hash_chained_timeline(client: TestClient, env: WebEnv) -> None:
    number = env.seeded.of("w0v2")
    r = await client.get(f"/api/issues/{number}", headers=env.auth("district"))
    raw = await r.text()
    d = await r.json()
    assert (d["level"], d["status"], d["owner"], d["department"], d["tuesday"]) == (
        "district",
        "resolved",
        "钱七",
        "区自然资源局",
        True,
    )
    kinds = [e["kind"] for e in d["events"]]
    assert kinds == ["created", "escalated", "reviewed", "escalated", "assigned", "feedback", "picture", "resolved"]
    assert [e["seq"] for e in d["events"]] == list(range(1, 9))
    assert all(e["prev_hash"] == p["hash"] for p, e in zip(d["events"], d["events"][1:], strict=False))
    # Two pictures queued for fetching (no worker runs here); DingTalk's codes are never shown.
    assert [p["status"] for p in d["events"][6]["pictures"]] == ["pending", "pending"]
    assert "dl-code-0-a" not in json.dumps(d)
    assert "137****5678" in d["events"][5]["note"]
    assert not RAW_PHONE.search(unhashed(raw)) and "13712345678" not in raw


async def test_nothing_the_api_returns_has_a_phone_or_id_number(client: TestClient, env: WebEnv) -> None:
    for issue in all_issues(env):
        raw = await (await client.get(f"/api/issues/{issue.id}", headers=env.auth("district"))).text()
        assert not RAW_PHONE.search(unhashed(raw)), raw
        assert ID_NUMBER not in raw and "0570-30" not in raw
    csv_text = (await (await client.get("/api/export.csv", headers=env.auth("district"))).read()).decode("utf-8-sig")
    assert not RAW_PHONE.search(csv_text) and ID_NUMBER not in csv_text and "138****0001" in csv_text


# --- stats = 统计 ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "speaker", "words", "query"),
    [
        ("district", "d001", "统计 2020", "from=2020-01-01&to=2020-12-31"),
        ("huayuan", "t001", "统计 2020", "from=2020-01-01&to=2020-12-31"),
        ("hangbu", "t102", "统计 2020-03-01~2020-04-15", "from=2020-03-01&to=2020-04-15"),
        ("shangyang", "v001", "统计", ""),
        ("district", "d001", "统计 本月", "from=2020-05-01&to=2020-05-31"),
    ],
)
async def test_stats_equal_the_chat_command(
    client: TestClient, env: WebEnv, key: str, speaker: str, words: str, query: str
) -> None:
    reply = env.chat.say(speaker, f"{words} 原文", at=NOW)
    assert reply.outcome == "ok"
    heading, paragraph = reply.reply.split("\n")
    stats = await get_json(client, f"/api/stats?{query}", env, key)
    assert stats["paragraph"] == paragraph
    assert heading == f"【统计】{stats['period']['label']} · {stats['unit']['name']}"


async def test_stats_numbers_and_township_rows(client: TestClient, env: WebEnv) -> None:
    stats = await get_json(client, "/api/stats?from=2020-01-01&to=2020-12-31", env)
    directory = env.app.dispatcher.directory
    with Session(env.app.engine) as s:
        counts = count_levels(
            s,
            Period(NOW.date().replace(month=1, day=1), NOW.date().replace(month=12, day=31), ""),
            directory.district,
            NOW,
        )
    assert stats["levels"]["district"]["assigned"] == counts.district_assigned == 4
    assert stats["levels"]["district"]["tuesday_assigned"] == counts.tuesday_assigned == 3
    assert stats["levels"]["village"] == {"entered": counts.village_entered, "resolved": counts.village_resolved}
    rows = {r["name"]: r for r in stats["townships"]}
    assert len(rows) == sum(1 for u in directory.units.values() if u.kind == "township")
    huayuan = rows["花园街道"]
    issues = [i for i in all_issues(env) if i.township_id == unit_id(env, "花园街道")]
    assert huayuan["entered"] == len(issues) == 10
    assert huayuan["resolved"] == sum(i.status == "resolved" for i in issues)
    assert huayuan["open"] == huayuan["entered"] - huayuan["resolved"]
    assert huayuan["overdue"] == 4 and huayuan["resolution_rate"] == 0.6
    assert huayuan["median_days"] == 3.3  # 09:30 on day 0 to 17:00 on day 3
    assert rows["信安街道"] == {**rows["信安街道"], "entered": 0, "resolution_rate": None, "median_days": None}
    narrow = await get_json(client, "/api/stats", env, "huayuan")
    assert [r["name"] for r in narrow["townships"]] == ["花园街道"]


@pytest.mark.parametrize("query", ["from=2020-1-1", "to=yesterday", "from=2020-02-30"])
async def test_bad_stats_periods_are_400(client: TestClient, env: WebEnv, query: str) -> None:
    await get_json(client, f"/api/stats?{query}", env, status=400)


async def test_extreme_and_reversed_periods_are_answered(client: TestClient, env: WebEnv) -> None:
    wide = await get_json(client, "/api/stats?from=0001-01-01&to=9999-12-31", env)
    assert wide["levels"]["village"]["entered"] == 60
    reversed_ = await get_json(client, "/api/stats?from=2020-12-31&to=2020-01-01", env)
    assert reversed_["levels"]["village"]["entered"] == 0


# --- the document matches the routes ---------------------------------------------------------


def test_the_openapi_document_lists_exactly_the_api_routes() -> None:
    routes = {re.sub(r"\{(\w+):[^}]+\}", r"{\1}", path) for path, _ in ROUTES if path.startswith("/api/")}
    assert set(document()["paths"]) == routes
    assert all(set(ops) == {"get"} for ops in document()["paths"].values())


def test_token_new_then_org_line_lets_it_in(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main
    from bot.org import SAMPLE, load_org
    from bot.web.auth import Tokens, token_hash

    assert main(["token", "new", "--unit", "航埠镇/新村", "--note", "航埠镇新村看板"]) == 0
    out = capsys.readouterr().out.splitlines()
    token = out[1]
    line = next(x for x in out if x.startswith("  - {sha256:"))
    assert token.startswith("ld_") and len(token) > 40 and token not in line and token_hash(token) in line
    org_file = tmp_path / "org.yaml"
    org_file.write_text(SAMPLE.read_text(encoding="utf-8") + "\napi_tokens:\n" + line + "\n", encoding="utf-8")
    org = load_org(org_file)
    unit = Tokens.from_org(org.api_tokens, org.directory).unit_for(token)
    assert unit is not None and (unit.name, org.directory.get(unit.parent_id).name) == ("新村", "航埠镇")
    assert org.api_tokens[0].note == "航埠镇新村看板"
    assert main(["token", "new", "--unit", "新村"]) == 2  # two townships have one
