"""The sandbox in a real browser (Debian's headless chromium driven by Playwright): a village
person posts a submission and the bot's receipt appears in the page."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import async_playwright

from bot.app import build
from bot.commands.sandbox import running
from tests.browser import CHROMIUM, FLAGS, needs_chromium
from tests.dingtalk import settings

SUBMISSION = "@两难助手 上报 上洋村村民李某反映宅基地审批8个月未批复,涉及历史遗留,联系电话13812345678"
PNG = b"\x89PNG\r\n\x1a\n"

# CI installs chromium (.ci/run), so there a missing browser is a failure, not a skip.
pytestmark = needs_chromium


async def test_village_person_posts_a_submission_and_sees_the_receipt(tmp_path: Path) -> None:
    app = build(settings(tmp_path))
    try:
        async with running(app, 0) as sandbox, async_playwright() as pw:
            # Playwright takes the profile directory here, not as --user-data-dir in the flags.
            browser = await pw.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"),
                executable_path=str(CHROMIUM),
                headless=True,
                args=FLAGS,
                viewport={"width": 1100, "height": 760},
                locale="zh-CN",
            )
            try:
                page = browser.pages[0] if browser.pages else await browser.new_page()
                await page.goto(sandbox.page_url)
                await page.select_option("#persona", "v001")  # 张三 · 村干部 · 花园街道·上洋村
                await page.get_by_role("button", name="上洋村两难群").click()
                await page.fill("#text", SUBMISSION)
                await page.click("#send")

                mine = page.locator(".msg.mine .bubble", has_text="宅基地审批8个月未批复")
                await mine.wait_for(timeout=15_000)
                assert await mine.locator(".at").inner_text() == "@两难助手"
                receipt = page.locator(".msg.bot .bubble", has_text="已登记 #1")
                await receipt.wait_for(timeout=15_000)
                text = await receipt.inner_text()
                assert text.startswith("已登记 #1【花园街道·上洋村】")
                assert "138****5678" in text and "13812345678" not in text

                shot = tmp_path / "sandbox.png"
                await page.screenshot(path=str(shot))
                assert shot.read_bytes().startswith(PNG)

                # Phone width: the page must fit without sideways scrolling.
                await page.set_viewport_size({"width": 390, "height": 844})
                overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                assert overflow <= 0
                await page.screenshot(path=str(tmp_path / "sandbox-phone.png"))

                # The header links to the dashboard (a sandbox-only token), which counts the new issue.
                link = page.locator("#dashboard")
                assert await link.is_visible()
                await page.goto(await link.get_attribute("href") or "")
                body = await page.locator("body").inner_text()
                assert "村(社区)层面累计排摸1件" in body, body[:300]
            finally:
                await browser.close()
    finally:
        app.engine.dispose()
