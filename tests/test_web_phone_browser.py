"""The dashboard on a 390 px phone and a desktop, in Debian's Chromium: the trend chart opens
with its legend, its scale and its last week label in view (nothing clipped, no sideways
scroll); the township ranking shows all its columns; an event's hash shows only on demand."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.web import create_web_app
from tests.browser import CHROMIUM, FLAGS, needs_chromium
from tests.web_support import WebEnv, served

pytestmark = needs_chromium
WIDTHS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1366, "height": 900}}


@pytest.fixture(scope="module")
def base_url(env: WebEnv) -> Iterator[str]:
    with served(create_web_app(env.app)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        yield b
        b.close()


def box(page: Any, selector: str) -> dict[str, float]:
    found = page.locator(selector).first.bounding_box()
    assert found is not None, selector
    return found


def inside(inner: dict[str, float], outer: dict[str, float]) -> bool:
    return (
        inner["x"] >= outer["x"] - 0.5
        and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 0.5
        and inner["y"] >= outer["y"] - 0.5
        and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 0.5
    )


@pytest.mark.parametrize("screen", list(WIDTHS))
def test_the_chart_and_ranking_fit_the_screen(browser: Any, base_url: str, env: WebEnv, screen: str) -> None:
    size = WIDTHS[screen]
    context = browser.new_context(viewport=size, is_mobile=screen == "phone", locale="zh-CN")
    page = context.new_page()
    page.goto(f"{base_url}/dashboard?token={env.tokens['district']}")
    view = {"x": 0.0, "y": -1e9, "width": float(size["width"]), "height": 2e9}  # horizontally in view
    chart = box(page, "svg.trend")
    assert inside(chart, view), chart
    for part in ("svg.trend .legend.new", "svg.trend .legend.resolved", "svg.trend .ylabel >> nth=-1"):
        assert inside(box(page, part), chart), part
    labels = page.locator("svg.trend .xlabel")
    last = labels.nth(labels.count() - 1).bounding_box()
    assert last is not None and inside(last, chart), (last, chart)
    legend_px = page.locator("svg.trend .legend.new").evaluate("e => e.getBoundingClientRect().height")
    assert legend_px >= 10  # still readable once the chart is scaled to the screen
    ranking = page.locator("table.ranking")
    assert ranking.evaluate("t => t.scrollWidth <= t.parentElement.clientWidth + 1")
    for th in ranking.locator("thead th").all():
        assert inside(th.bounding_box(), view), th.inner_text()
    assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth + 1")
    context.close()


def test_an_events_hash_shows_only_on_demand(browser: Any, base_url: str, env: WebEnv, tmp_path: Path) -> None:
    context = browser.new_context(viewport=WIDTHS["phone"], is_mobile=True, locale="zh-CN")
    page = context.new_page()
    page.goto(f"{base_url}/dashboard/issues/{env.seeded.of('w0v0')}?token={env.tokens['district']}")
    first = page.locator("#timeline li details.hash").first
    code = first.locator("code")
    assert "校验码" in page.locator("#timeline li").first.inner_text()
    assert len(code.text_content() or "") == 16 and not code.is_visible()
    first.locator("summary").click()
    assert code.is_visible()
    page.screenshot(path=str(tmp_path / "issue-phone.png"), full_page=True)
    context.close()
