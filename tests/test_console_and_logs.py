from __future__ import annotations

import logging

import pytest

from bot.app import App
from bot.console import run_console
from bot.logs import MaskingFilter


def test_console_chat_as_a_village_person(app: App) -> None:
    out: list[str] = []
    # Person numbers follow the listing; find 张三's number from the printed list.
    listing: list[str] = []
    run_console(app, input_fn=lambda _p: "/退出", print_fn=listing.append)
    number = next(line.split(".")[0].strip() for line in listing if "张三" in line)
    lines = iter(["99", number, "上报 村里道路塌方,联系电话13812345678", "上报 #1 需要街道协调", "/退出"])
    assert run_console(app, input_fn=lambda _p: next(lines), print_fn=out.append) == 0
    text = "\n".join(out)
    assert "请输入人员编号。" in text and "现在你是 张三" in text
    assert "两难助手: 已登记 #1【花园街道·上洋村】村里道路塌方" in text and "138****5678" in text
    assert "13812345678" not in text
    assert "→ [cid-huayuan] 新上报 #1" in text  # what went to the township group


def test_console_ends_on_end_of_input(app: App) -> None:
    def eof(_prompt: str) -> str:
        raise EOFError

    assert run_console(app, input_fn=eof, print_fn=lambda *_: None) == 0


def test_logs_never_carry_phone_or_id_numbers(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("liandong.test")
    logger.addFilter(MaskingFilter())
    with caplog.at_level(logging.INFO, logger="liandong.test"):
        logger.info("来电 %s 身份证 %s", "13812345678", "11010519491231002X")
    assert caplog.messages == ["来电 138****5678 身份证 [身份证号已隐藏]"]
