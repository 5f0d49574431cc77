"""行政败诉风险's three answers (是 / 疑似 / 否) as every web surface shows them: the list's tag,
the issue page's 风险 line, the API's two flags and their OpenAPI description, and the ledger's
cell in .csv and .xlsx. One case of each, posted in chat as a village clerk would."""

from __future__ import annotations

import re
from html import unescape

import pytest
from aiohttp.test_utils import TestClient

from bot.web.openapi import document
from models.vocabulary import Litigation
from tests.web_support import WebEnv, csv_records, download, page, records, sheet

POSTS = {
    Litigation.YES: "上洋村村民对镇政府的征地补偿决定不服,已申请行政复议",
    Litigation.SUSPECTED: "上洋村村民与人发生纠纷,情绪激动,扬言要起诉",
    Litigation.NO: "上洋村装修公司拖欠工人工资,工人准备申请劳动仲裁",
}
TAG = re.compile(r'<span class="tag risk">([^<]*)</span>')


@pytest.fixture(scope="module")
def posted(env: WebEnv) -> dict[Litigation, int]:
    ids = {}
    for kind, text in POSTS.items():
        r = env.chat.say("v001", f"上报 {text}")
        assert r.outcome == "ok" and r.issue_id, r.reply
        ids[kind] = r.issue_id
    return ids


@pytest.mark.parametrize("kind", list(Litigation))
async def test_the_list_tags_是_and_疑似_and_not_否(
    client: TestClient, env: WebEnv, posted: dict[Litigation, int], kind: Litigation
) -> None:
    html = await page(client, env, f"/dashboard/issues?q={POSTS[kind][3:12]}")
    row = next(r for r in html.split("<tr")[1:] if f'/dashboard/issues/{posted[kind]}"' in r)
    assert [unescape(t) for t in TAG.findall(row)] == ([kind.label] if kind.label else [])


@pytest.mark.parametrize("kind", list(Litigation))
async def test_the_issue_page_says_it_on_the_风险_line(
    client: TestClient, env: WebEnv, posted: dict[Litigation, int], kind: Litigation
) -> None:
    html = await page(client, env, f"/dashboard/issues/{posted[kind]}")
    line = unescape(re.search(r"<dt>风险</dt><dd>([^<]*)</dd>", html).group(1))  # type: ignore[union-attr]
    assert line == " · ".join(filter(None, ("未评", kind.label)))


async def test_the_api_gives_two_flags_never_both_and_describes_them(
    client: TestClient, env: WebEnv, posted: dict[Litigation, int]
) -> None:
    for kind, issue_id in posted.items():
        r = await client.get(f"/api/issues/{issue_id}", headers=env.auth("district"))
        body = await r.json()
        assert (body["litigation_risk"], body["litigation_suspected"]) == kind.flags
    props = document()["components"]["schemas"]["IssueDetail"]["properties"]
    assert "是" in props["litigation_risk"]["description"]
    assert "疑似" in props["litigation_suspected"]["description"]


async def test_the_ledger_cell_is_是_疑似_or_否(client: TestClient, env: WebEnv, posted: dict[Litigation, int]) -> None:
    body, _ = await download(client, env, "/api/export.csv")
    by_id = {int(row["编号"]): row["行政败诉风险"] for row in csv_records(body)}
    body, _ = await download(client, env, "/api/export.xlsx")
    cells = {row["编号"]: row["行政败诉风险"] for row in records(sheet(body))}
    for kind, issue_id in posted.items():
        assert by_id[issue_id] == cells[issue_id] == kind.value
