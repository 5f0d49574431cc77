"""The dashboard on a 390 px phone and a desktop, in Debian's Chromium: the trend chart opens
with its legend, its scale and its last week label in view (nothing clipped, no sideways
scroll); the township ranking shows all its columns; an event's hash shows only on demand; the
overdue table stacks on a phone instead of scrolling in its card; ?big=1 is large enough for a
projector (computed font sizes and contrast)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.web import create_web_app
from tests.browser import chromium, needs_chromium
from tests.web_support import WebEnv, served

pytestmark = needs_chromium
WIDTHS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1366, "height": 900}}


@pytest.fixture(scope="module")
def base_url(env: WebEnv) -> Iterator[str]:
    with served(create_web_app(env.app)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


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


def contrast(fg: str, bg: str) -> float:
    """WCAG contrast ratio of two computed `rgb(r, g, b)` colours."""

    def luminance(css: str) -> float:
        channels = [int(c) / 255 for c in css[css.index("(") + 1 : css.index(")")].split(",")[:3]]
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    a, b = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


STYLE = "e => { const s = getComputedStyle(e); return [parseFloat(s.fontSize), s.color]; }"
BODY_TEXT = (".sub span", "blockquote.paragraph", "table.ranking td", "p.quick a")
LABELS = (".bignum .k", ".level h2", "table.ranking th a", "form.filters label", "footer", "#overdue th")


@pytest.mark.parametrize("screen", list(WIDTHS))
def test_large_text_for_a_projector(browser: Any, base_url: str, env: WebEnv, screen: str, tmp_path: Path) -> None:
    size = WIDTHS[screen]
    context = browser.new_context(viewport=size, is_mobile=screen == "phone", locale="zh-CN")
    page = context.new_page()
    page.goto(f"{base_url}/dashboard?token={env.tokens['district']}")
    plain = page.locator(".bignum .k").first.evaluate(STYLE)[0]
    page.click("a.bigmode")  # the toggle, remembered in the address
    page.wait_for_url("**/dashboard?big=1")
    for selector in BODY_TEXT:
        if screen == "phone" and selector.startswith("table.ranking"):
            continue  # compact on a phone: its seven columns must fit 390 px
        px, _ = page.locator(selector).first.evaluate(STYLE)
        assert px >= 22, (selector, px)
    for selector in LABELS:
        label = page.locator(selector).first
        if screen == "phone" and selector == "#overdue th":
            continue  # the phone stacks that table: its column names are inside the rows
        px, color = label.evaluate(STYLE)
        assert px >= 18 and contrast(color, "rgb(255, 255, 255)") >= 7, (selector, px, color)
    assert page.locator(".bignum .k").first.evaluate(STYLE)[0] > plain  # bigger than the normal page
    # The three cards side by side on a projector, one under another on a phone; nothing sideways.
    cards = [box(page, f"section.level.{k}") for k in ("district", "township", "village")]
    if screen == "desktop":
        assert len({round(c["y"]) for c in cards}) == 1, cards
    assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth + 1")
    # Every link and form of the page stays in large text; the toggle leads back.
    for selector in ("p.quick a", "table.ranking th a", "#overdue td a", "header.top a[href^='/dashboard/issues']"):
        assert "big=1" in (page.locator(selector).first.get_attribute("href") or ""), selector
    page.screenshot(path=str(tmp_path / f"big-{screen}.png"), full_page=True)
    page.click("a.bigmode")
    page.wait_for_url("**/dashboard")
    assert page.locator(".bignum .k").first.evaluate(STYLE)[0] == plain
    page.goto(f"{base_url}/dashboard/issues?big=1&overdue=true")
    assert page.locator("table.issues td").first.evaluate(STYLE)[0] >= 22
    context.close()


@pytest.mark.parametrize("screen", list(WIDTHS))
def test_the_overdue_table_fits_its_card(browser: Any, base_url: str, env: WebEnv, screen: str) -> None:
    size = WIDTHS[screen]
    context = browser.new_context(viewport=size, is_mobile=screen == "phone", locale="zh-CN")
    page = context.new_page()
    page.goto(f"{base_url}/dashboard?token={env.tokens['district']}")
    card = page.locator("#overdue")
    assert card.evaluate("c => c.scrollWidth <= c.clientWidth + 1")  # no scrolling inside the card
    view = {"x": 0.0, "y": -1e9, "width": float(size["width"]), "height": 2e9}
    cells = card.locator("tbody td")
    assert cells.count() >= 7
    for i in range(cells.count()):
        assert inside(cells.nth(i).bounding_box(), view), cells.nth(i).inner_text()
    heads_shown = card.locator("thead th").first.is_visible()
    if screen == "phone":  # stacked: each figure after its column's name
        assert not heads_shown
        deadline = card.locator("td[data-label='截止']").first
        assert deadline.evaluate("d => getComputedStyle(d, '::before').content") == '"截止:"'
        first = card.locator("tbody tr").first
        number, title = (
            box(page, "#overdue tbody tr >> nth=0 >> td >> nth=0"),
            first.locator("td").nth(1).bounding_box(),
        )
        assert title is not None and abs(number["y"] - title["y"]) < 4  # 编号 and 标题 share the first line
    else:
        assert heads_shown
    context.close()
