"""Identifiers (msgId, conversationId, senderStaffId, an @'d user's staffId) carrying a C0 or
C1 control character, a line separator, a bidi override, a zero-width character or a lone
surrogate are refused: a logged reason naming the character (never the id), the frame acked
as bad so that it does not return, nothing stored, its neighbours unaffected."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest

from bot.sandbox.emulator import Emulator
from bot.transport.payload import BadPayload, to_incoming
from models.tables import InboxMessage
from tests.dingtalk import Rig
from tests.test_http_callback import client as _client
from tests.test_http_callback import count, headers

callback = _client  # the HTTP callback site's fixture, under this module's name

BAD = {
    "nul": "\x00",
    "esc": "\x1b",
    "del": "\x7f",
    "c1-nel": "\x85",
    "c1-csi": "\x9b",
    "line-separator": "\u2028",
    "rlo": "\u202e",
    "lri": "\u2066",
    "alm": "\u061c",
    "zwsp": "\u200b",
    "zwj": "\u200d",
    "word-joiner": "\u2060",
    "bom": "\ufeff",
    "surrogate": "\ud800",
}
FIELDS = ("msgId", "conversationId", "senderStaffId")


def payload(field: str | None = None, char: str = "", i: int = 0) -> dict[str, Any]:
    p = Emulator().user_message("cid-shangyang", "v001", "张三", f"上报 上洋村第{i}处道路塌方,影响通行")
    if field:
        p[field] = f"{p[field][:4]}{char}{p[field][4:]}"
    return p


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("char", BAD.values(), ids=BAD.keys())
def test_each_bad_character_in_each_identifier_is_refused_with_its_code_point(field: str, char: str) -> None:
    bad = payload(field, char)
    with pytest.raises(BadPayload) as e:
        to_incoming(bad)
    assert str(e.value).startswith(field) and f"U+{ord(char):04X}" in str(e.value)
    assert bad[field] not in str(e.value)


@pytest.mark.parametrize("char", ["\u202e", "\u200b", "\x85"], ids=["rlo", "zwsp", "nel"])
def test_an_at_users_staff_id_is_an_identifier_too(char: str) -> None:
    bad = payload()
    bad["atUsers"] = [{"dingtalkId": "$:LWCP_v1:$bot", "staffId": f"v0{char}02"}]
    with pytest.raises(BadPayload, match="staffId"):
        to_incoming(bad)


def test_ordinary_ids_pass() -> None:
    good = payload()
    good["senderStaffId"] = "manager 4921-张"  # a custom userid: spaces, hyphens and Chinese are text
    assert to_incoming(good).sender_staff_id == "manager 4921-张"


async def test_over_the_stream_a_bad_id_is_acked_400_logged_and_its_neighbours_are_stored(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "bot.transport.stream")
    sendable = {k: v for k, v in BAD.items() if k != "surrogate"}  # not UTF-8: tests/test_stream.py sends one escaped
    for n, char in enumerate(sendable.values()):
        await rig.emulator.deliver(payload(FIELDS[n % 3], char, n))
        await rig.emulator.deliver(payload(i=100 + n))
    acks = rig.emulator.acks  # by frame id: the refused frames are the ones answered 400
    await rig.emulator.wait_for(lambda: sum(code == 400 for code in acks.values()) == len(sendable), timeout=30)
    await rig.emulator.wait_for(lambda: len(rig.emulator.sent) == len(sendable), timeout=30)
    await rig.settle()
    assert rig.count(InboxMessage) == len(sendable)  # the good ones only
    refused = [r.getMessage() for r in caplog.records if "rejected bot message frame" in r.getMessage()]
    assert len(refused) == len(sendable)
    assert all("U+" in line and "\n" not in line and "\u202e" not in line for line in refused)


async def test_over_http_a_bad_id_is_refused_400_with_its_reason_logged(
    callback, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    http, app, pipeline = callback
    caplog.set_level(logging.WARNING, "bot.transport.http_callback")
    for n, char in enumerate(("\u202e", "\u200d", "\x9b")):
        raw = json.dumps(payload(FIELDS[n], char, n)).encode()
        resp = await http.post("/dingtalk/callback", data=raw, headers=headers(int(time.time() * 1000)))
        assert resp.status == 400
    good = json.dumps(payload(i=9), ensure_ascii=False).encode()
    assert (await http.post("/dingtalk/callback", data=good, headers=headers(int(time.time() * 1000)))).status == 200
    await pipeline.drain()
    assert count(app, InboxMessage) == 1
    lines = [r.getMessage() for r in caplog.records]
    assert any("msgId has the Cf character U+202E" in line for line in lines)
    assert any("senderStaffId has the Cc character U+009B" in line for line in lines)
