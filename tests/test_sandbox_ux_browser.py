"""The sandbox page in Debian's chromium at phone and desktop widths: a notice arriving in a
group not shown, or one to one, marks it with a count until it is opened; 重置沙盒 asks first,
then the page and the next 上报 agree on #1."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright

from bot.app import build
from bot.commands.sandbox import running
from tests.browser import CHROMIUM, FLAGS, needs_chromium
from tests.dingtalk import settings

pytestmark = needs_chromium
WIDTHS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
SUBMISSION = "@两难助手 上报 上洋村村民李某反映宅基地审批8个月未批复,涉及历史遗留,联系电话13812345678"


async def say(page: Page, text: str) -> None:
    await page.fill("#text", text)
    await page.click("#send")


@pytest.mark.parametrize("screen", list(WIDTHS))
async def test_unread_marks_and_reset(tmp_path: Path, screen: str) -> None:
    app = build(settings(tmp_path))
    try:
        async with running(app, 0) as sandbox, async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
            try:
                context = await browser.new_context(
                    viewport=WIDTHS[screen], locale="zh-CN", is_mobile=screen == "phone"
                )
                page = await context.new_page()
                await page.goto(sandbox.page_url)
                await page.select_option("#persona", "v001")  # 张三 · 村干部 · 上洋村: its group opens
                shangyang = page.locator("#groups button", has_text="上洋村两难群")
                huayuan = page.locator("#groups button", has_text="花园街道两难群")
                await page.locator("#groups button.active", has_text="上洋村两难群").wait_for()
                await say(page, SUBMISSION)
                await page.locator(".msg.bot .bubble", has_text="已登记 #1").wait_for(timeout=15_000)
                assert not await shangyang.locator(".badge").is_visible()  # shown: never unread

                # 上报 to the township: its group (not shown) gets the notice and a count.
                await say(page, "@两难助手 上报 #1 村里无法协调,需街道出面")
                badge = huayuan.locator(".badge")
                await badge.wait_for(state="visible", timeout=15_000)
                assert int(await badge.inner_text()) >= 1
                assert (await page.title()).startswith(f"({await badge.inner_text()}) ")
                assert await badge.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(245, 63, 63)"
                assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
                await page.screenshot(path=str(tmp_path / f"unread-{screen}.png"))
                await huayuan.click()
                await page.locator(".msg.bot .bubble", has_text="新上报 #1").wait_for(timeout=15_000)
                assert not await badge.is_visible()  # opened: cleared
                assert await page.title() == "两难助手 · 本地沙盒"

                # 王五, the township lead, was told one to one: his 单聊 view is marked until opened.
                await page.select_option("#persona", "t101")
                direct = page.locator("#groups button", has_text="单聊消息").locator(".badge")
                await direct.wait_for(state="visible", timeout=15_000)
                assert await direct.inner_text() == "1"
                await page.locator("#groups button", has_text="单聊消息").click()
                await page.locator(".msg.bot .bubble", has_text="新上报 #1").wait_for(timeout=15_000)
                assert not await direct.is_visible()
                await page.select_option("#persona", "v001")
                await shangyang.click()

                # 重置沙盒: dismissed, nothing happens; accepted, everything starts over.
                page.once("dialog", lambda d: d.dismiss())
                await page.click("#reset")
                assert await page.locator(".msg").count() >= 1
                asked: list[str] = []

                async def accept(dialog):  # type: ignore[no-untyped-def]
                    asked.append(dialog.message)
                    await dialog.accept()

                page.once("dialog", accept)
                await page.click("#reset")
                await page.locator("#clock-ran", has_text="沙盒已重置").wait_for(timeout=15_000)
                assert "#1" in asked[0]
                await page.locator(".empty").wait_for()
                assert await page.locator(".msg").count() == 0
                await shangyang.click()
                await page.locator(".empty").wait_for()
                assert not await page.locator("#groups .badge:visible").count()
                await say(page, "@两难助手 上报 上洋村水渠堵塞,雨天农田被淹,请尽快疏通")
                receipt = page.locator(".msg.bot .bubble", has_text="已登记 #1")
                await receipt.wait_for(timeout=15_000)
                assert await page.locator(".msg").count() == 2
                await context.close()
            finally:
                await browser.close()
    finally:
        app.engine.dispose()
