"""A real headless Chromium (Debian's) opens the dashboard link with seeded data: the token
moves into an HttpOnly cookie, the numbers equal /api/stats, the chart has its data points,
the ranking sorts, an issue page opens, a phone-sized window does not scroll sideways, and a
screenshot is saved."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bot.web import create_web_app
from tests.browser import chromium, needs_chromium
from tests.web_support import WebEnv, served

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def base_url(env: WebEnv) -> Iterator[str]:
    with served(create_web_app(env.app)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as b:
        yield b


def test_the_dashboard_in_chromium(browser, base_url: str, env: WebEnv, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    stats = requests.get(f"{base_url}/api/stats", headers=env.auth("district"), timeout=10).json()
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    page = context.new_page()
    response = page.goto(f"{base_url}/dashboard?token={env.tokens['district']}")
    assert response is not None and response.status == 200
    assert page.url == f"{base_url}/dashboard"  # the token left the address bar
    cookie = next(c for c in context.cookies() if c["name"] == "liandong_token")
    assert cookie["httpOnly"] and cookie["value"] == env.tokens["district"]
    assert page.evaluate("document.cookie") == ""  # page script cannot read it

    levels = stats["levels"]
    for key, value in {
        "district_assigned": levels["district"]["assigned"],
        "district_resolved": levels["district"]["resolved"],
        "tuesday_assigned": levels["district"]["tuesday_assigned"],
        "township_entered": levels["township"]["entered"],
        "village_entered": levels["village"]["entered"],
    }.items():
        assert page.locator(f'[data-stat="{key}"]').inner_text() == str(value), key
    assert page.locator("#paragraph").inner_text() == stats["paragraph"]

    chart = page.locator("svg.trend")
    box = chart.bounding_box()
    assert box is not None and box["width"] > 800 and box["height"] > 200
    points = page.locator("svg.trend circle.point")
    assert points.count() == 52
    values = [int(v) for v in points.evaluate_all("ps => ps.map(p => p.dataset.value)")]
    assert sum(values) > 0
    tops = points.evaluate_all("ps => ps.map(p => p.getBoundingClientRect().top)")
    highest = max(range(52), key=lambda i: values[i])
    lowest = min(range(52), key=lambda i: values[i])
    assert tops[highest] < tops[lowest]  # drawn: a bigger number sits higher on the screen
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
    assert (tmp_path / "dashboard.png").stat().st_size > 20_000

    page.locator("#ranking th a", has_text="逾期").click()
    page.wait_for_url("**/dashboard?*sort=overdue*")
    assert page.locator("table.ranking tbody tr").first.get_attribute("data-township") == "花园街道"

    page.locator("#overdue tr[data-issue] a").first.click()
    page.wait_for_url("**/dashboard/issues/*")
    assert page.locator("#timeline li").count() >= 4
    facts = page.locator("dl.facts").inner_text()
    shown = facts + page.locator("p.text").inner_text()
    assert "138****" in facts and not re.search(r"1[3-9][0-9]{9}", shown)

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, device_scale_factor=2)
    phone.add_cookies([{"name": cookie["name"], "value": cookie["value"], "url": base_url}])
    small = phone.new_page()
    small.goto(f"{base_url}/dashboard")
    assert small.locator('[data-stat="village_entered"]').inner_text() == str(levels["village"]["entered"])
    assert small.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth + 1")
    small.screenshot(path=str(tmp_path / "dashboard-phone.png"), full_page=True)
    phone.close()
    context.close()
