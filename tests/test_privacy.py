"""Phone and ID numbers in every written form, the app secret, DingTalk's access token and the
dashboard tokens never reach what anyone outside the database reads: the logs at their most
verbose, what DingTalk received (group replies, notices, one-to-one), the case page, the API,
the ledger exports and `liandong outbox`."""

from __future__ import annotations

import io
import json
import logging
import re
import unicodedata
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest

from bot.app import build
from bot.cli import main
from bot.config import Settings
from bot.logs import MaskingFilter
from bot.web import create_web_app
from models.clock import SHANGHAI, FrozenClock
from tests.conftest import Chat
from tests.web_support import org_with_tokens, served

PHONE, ID18, ID18X, ID15 = "13800001234", "330802198506120042", "11010519491231002X", "330802850612004"
WRITTEN = [  # how people really type them
    "138 0000 1234",
    "138-0000-1234",
    "138.0000.1234",
    "１３８００００１２３４",
    "+86 138 0000 1234",
    f"身份证ID{ID18}",
    "330802 19850612 0042",
    ID18X,
    f"老证{ID15}",
]


def digits(text: str) -> str:
    """Only the digits (and the X of an ID), full-width folded: a number split by spaces, dots
    or dashes, or typed full-width, is found all the same."""
    return re.sub(r"[^0-9X]", "", unicodedata.normalize("NFKC", text).upper())


def leaks(text: str, secrets: list[str]) -> list[str]:
    found = [n for n in (PHONE, ID18, ID18X, ID15) if n in digits(text)]
    return found + [s for s in secrets if s in text]


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """The root logger at DEBUG through the product's own masking filter, as `liandong run`'s."""
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(MaskingFilter())
    root = logging.getLogger()
    old_level, old_handlers = root.level, root.handlers[:]
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG)
    try:
        yield buf
    finally:
        root.handlers[:] = old_handlers
        root.setLevel(old_level)


def test_no_phone_id_secret_or_token_reaches_anything_outside_the_database(
    tmp_path: Path, logs: io.StringIO, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    org, tokens = org_with_tokens(tmp_path)
    url = f"sqlite:///{tmp_path}/bot.db"
    clock = FrozenClock(datetime(2020, 3, 2, 9, 0, tzinfo=SHANGHAI))
    app = build(Settings(database_url=url, org_file=org, photos_dir=tmp_path / "photos"), clock)
    chat = Chat(app, clock)
    emulator = chat.dingtalk.emulator
    secrets = [emulator.client_secret, *tokens.values()]

    numbers = ",".join(WRITTEN)
    heard = [
        chat.say("v001", f"上报 上洋村王某拖欠工资,联系人电话{numbers},请协调"),
        chat.say("v001", f"上报 #1 村里协调不了,当事人 {WRITTEN[0]}"),
        chat.say("t001", f"研判 #1 核实身份 {WRITTEN[5]} 风险:高"),
        chat.say("t101", f"上报 #1 需区级协调,联系 {WRITTEN[3]}"),
        chat.say("v001", f"改 #1 标题=王某欠薪 {WRITTEN[2]}"),
        chat.say("v001", f"查 #{PHONE}"),
        chat.say("v001", "查 #1"),
        chat.say("v001", "列表"),
    ]
    assert heard[0].outcome == "ok" and heard[0].issue_id == 1
    assert all(h.outcome in ("ok", "refused") for h in heard), heard
    chat.deliver()
    secrets += sorted(emulator._tokens)  # the access tokens DingTalk issued to the bot
    assert emulator.sent, "DingTalk received nothing: the test would prove nothing"
    for sent in emulator.sent:
        assert not leaks(json.dumps(sent.__dict__, ensure_ascii=False, default=str), secrets), sent

    with served(create_web_app(app, clock)) as base:
        auth = {"Authorization": f"Bearer {tokens['district']}"}
        for path in ("/api/issues", "/api/issues/1", "/dashboard/issues/1", "/dashboard", "/api/export.csv"):
            with urllib.request.urlopen(urllib.request.Request(base + path, headers=auth), timeout=30) as r:
                body = r.read().decode("utf-8-sig")
            if path == "/api/issues/1":
                assert "上洋村王某拖欠工资" in body and "****" in body  # the text is there, masked
            assert not leaks(body, secrets), path
        with urllib.request.urlopen(urllib.request.Request(base + "/api/export.xlsx", headers=auth), timeout=30) as r:
            xlsx = r.read()
    book = openpyxl.load_workbook(io.BytesIO(xlsx), read_only=True)
    sheets = " ".join(str(v) for ws in book.worksheets for row in ws.iter_rows(values_only=True) for v in row)
    assert "王某" in sheets
    assert not leaks(sheets, secrets)

    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("LIANDONG_ORG", str(org))
    capsys.readouterr()
    for argv in (["outbox"], ["outbox", "--pending"], ["export", "--format", "csv", "-o", str(tmp_path / "l.csv")]):
        assert main([*argv, "--org", str(org)]) == 0
    printed = capsys.readouterr()
    assert "#1" in printed.out or "上洋村" in printed.out
    assert not leaks(printed.out + printed.err, secrets)
    assert not leaks((tmp_path / "l.csv").read_text(encoding="utf-8-sig"), secrets)

    written = logs.getvalue()
    assert "DEBUG" in written  # the most verbose level really was on
    assert not leaks(written, secrets), [line for line in written.splitlines() if leaks(line, secrets)][:5]
