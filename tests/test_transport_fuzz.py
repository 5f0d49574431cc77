"""Property tests, bounded (a few hundred examples each, no deadline): the frame decoder, the
frame parser, the payload parser and the grammar never raise anything but their refusal
(BadPayload), whatever arrives: any text or bytes, any JSON value (1e400, deep nesting, wrong
types, control and bidi characters, lone surrogates), in any field DingTalk names."""

from __future__ import annotations

import contextlib
import json
import unicodedata
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.transport.payload import BadPayload, decode, to_incoming
from bot.transport.stream import parse_frame
from handlers.grammar import normalize
from handlers.verbs import GRAMMAR, VERBS
from tests.dingtalk import Rig

ANY_CHAR = st.characters(exclude_categories=())  # controls, format characters and surrogates too
HOSTILE = [
    "\x00", "\n", "\x85", "\u202e", "\u200b", "\ufeff", "\ud800", "@所有人", "＃１２", "#", "1e400", "🙂",
    "e", "\u0301", "\u1100", "\u1161",
]  # fmt: skip
TEXT = st.lists(st.one_of(st.sampled_from(HOSTILE), st.text(ANY_CHAR, max_size=20)), max_size=40).map("".join)
SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
)
JSON = st.recursive(
    SCALAR, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(TEXT, kids, max_size=4), max_leaves=20
)
PAYLOAD_KEYS = [
    "msgId", "conversationId", "conversationType", "senderStaffId", "senderUnionId", "senderId", "senderNick",
    "createAt", "atUsers", "chatbotUserId", "sessionWebhook", "sessionWebhookExpiredTime", "msgtype", "text", "content",
]  # fmt: skip
HEADER_KEYS = ["topic", "messageId", "contentType", "time", "appId", "connectionId", "eventBornTime", "eventType"]


def good_payload() -> dict[str, Any]:
    return {
        "msgId": "msg0001",
        "conversationId": "cid-shangyang",
        "conversationType": "2",
        "senderStaffId": "v001",
        "senderNick": "张三",
        "createAt": 1_700_000_000_000,
        "msgtype": "text",
        "text": {"content": "上报 上洋村井盖缺失"},
    }


@settings(max_examples=200, deadline=None)
@given(st.one_of(TEXT, st.binary(max_size=200), JSON.map(lambda v: json.dumps(v, allow_nan=True))))
def test_decode_returns_a_value_or_refuses(raw: str | bytes) -> None:
    with contextlib.suppress(BadPayload):
        decode(raw)


@settings(max_examples=250, deadline=None)
@given(st.dictionaries(st.sampled_from(PAYLOAD_KEYS), JSON, max_size=8), st.booleans())
def test_the_payload_parser_returns_a_message_or_refuses(fields: dict[str, Any], on_good: bool) -> None:
    data = {**good_payload(), **fields} if on_good else fields
    try:
        msg = to_incoming(data)
    except BadPayload:
        return
    for ident in (msg.msg_id, msg.conversation_id, msg.sender_staff_id):
        # Nothing hidden in an id: no control, format, separator or surrogate character.
        assert ident is None or not {unicodedata.category(c) for c in ident} & {"Cc", "Cf", "Cs", "Zl", "Zp"}
    assert "\n" not in msg.sender_nick and "\u202e" not in msg.sender_nick
    msg.text.encode("utf-8")  # storable: no lone surrogate survives


@settings(max_examples=250, deadline=None)
@given(
    st.sampled_from(["SYSTEM", "CALLBACK", "EVENT", None, 7]),
    st.one_of(JSON, st.dictionaries(st.sampled_from(HEADER_KEYS), JSON, max_size=6)),
    st.one_of(JSON, JSON.map(json.dumps), st.just("[" * 5000 + "]" * 5000)),
)
def test_the_frame_parser_returns_a_frame_or_refuses(kind: Any, headers: Any, data: Any) -> None:
    frame = {"specVersion": "1.0", "type": kind, "headers": headers, "data": data}
    with contextlib.suppress(BadPayload):
        parse_frame(frame)


@settings(max_examples=250, deadline=None)
@given(TEXT.map(lambda t: t[:4000]))
@example("e\u200b\u0301")  # found by this test: zero-width characters were taken out after NFKC
@example("\u1100\u200b\u1161")
def test_the_grammar_parses_anything_and_normalizing_twice_changes_nothing(text: str) -> None:
    command = GRAMMAR.parse(text)
    assert command.verb is None or command.verb in {v.name for v in VERBS}
    assert all(n >= 0 for n in command.refs)
    assert normalize(command.text) == command.text  # the parse of its own output is the same parse
    assert GRAMMAR.parse(command.text) == command
    GRAMMAR.suggest(text)


async def test_a_frame_whose_header_time_is_1e400_is_refused_and_the_reader_goes_on(rig: Rig) -> None:
    """Found by the frame fuzz: the SDK's int(1e400) raised OverflowError, which failed the
    frame's task unacknowledged (it came back forever) and, in a SYSTEM frame, killed the reader."""
    conn = next(iter(rig.emulator.connections.values()))
    data = json.dumps(rig.payload("上报 上洋村道路塌方,影响通行"), ensure_ascii=False)
    for kind, mid in (("CALLBACK", "inf-1"), ("SYSTEM", "inf-2")):
        headers = {"topic": "/v1.0/im/bot/messages/get", "messageId": mid, "contentType": "application/json"}
        raw = json.dumps({"specVersion": "1.0", "type": kind, "headers": headers, "data": data})
        await conn.ws.send_str(raw.replace('"contentType"', '"time": 1e400, "contentType"'))
    await rig.emulator.wait_for(lambda: rig.emulator.acks.get("inf-1") == 400)
    await rig.emulator.deliver(rig.payload("上报 上洋村第2处道路塌方,影响通行"))
    await rig.emulator.wait_for(lambda: len(rig.emulator.sent) == 1)
    assert rig.emulator.opened == 1  # the same connection: its reader survived the SYSTEM one
