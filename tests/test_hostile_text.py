"""What a sender writes never reaches a reply in a form that leaks or misleads: numbers in every
written form are masked, nicks are echoed masked and without bidi overrides, and a number typed
after # is answered as typed."""

from __future__ import annotations

import pytest

from bot.sandbox.emulator import Emulator
from bot.transport.payload import BadPayload, to_incoming
from models.masking import mask
from tests.conftest import Chat
from tests.dingtalk import Rig

ID = "330802198506120042"  # a valid check digit


@pytest.mark.parametrize(
    "text",
    [
        f"身份证ID{ID}",
        f"身份证号:{ID[:17]}1",  # wrong check digit: still an ID
        "身份证 330802 19850612 0042",
        "身份证 330802-19850612-0042",
        "老身份证330802850612004",  # 15 digits, issued before 1999
        "电话138.0000.1234",
        "电话 138 0000 1234",
        "电话１３８００００１２３４",
    ],
)
def test_every_written_form_is_masked(text: str) -> None:
    masked = mask(text)
    digits = "".join(c for c in masked if c.isdigit())
    assert "00001234" not in digits and "19850612" not in digits and "850612" not in digits, masked


@pytest.mark.parametrize("text", ["订单号123456789012345678", "金额1234.56元", "第2020年12月"])
def test_numbers_that_are_not_ids_or_phones_stay(text: str) -> None:
    assert mask(text) == text


def test_payload_identifiers_must_be_printable_and_storable() -> None:
    base = Emulator().user_message("cid-shangyang", "v001", "张三", "上报 道路塌方")
    for field, value in (("msgId", "a\nb"), ("msgId", "\ud800"), ("senderStaffId", "v\udfff"), ("msgId", "x" * 300)):
        with pytest.raises(BadPayload):
            to_incoming({**base, field: value})
    msg = to_incoming({**base, "text": {"content": "上报 道路\ud800塌方"}, "senderNick": "张\u202e三\n"})
    assert msg.text == "上报 道路\ufffd塌方" and msg.sender_nick == "张三"


async def test_an_unregistered_senders_nick_is_echoed_masked(rig: Rig) -> None:
    nick = "张\u202e13800001234"
    await rig.emulator.deliver(rig.emulator.user_message("cid-shangyang", "x999", nick, "上报 有人反映道路塌方很久了"))
    await rig.emulator.wait_for(lambda: len(rig.emulator.sent) == 1)
    # On the wire the mask's stars are escaped, so DingTalk's markdown shows them as stars.
    assert rig.emulator.sent[0].text == "张138\\*\\*\\*\\*1234还未登记,请联系管理员添加。"


def test_a_number_typed_after_hash_is_answered_as_typed_and_masked(chat: Chat) -> None:
    r = chat.say("v001", "查 #13800001234")
    assert r.outcome == "refused" and r.reply == "未找到 #138****1234,请核对编号。"
    r = chat.say("v001", "查 #99999999999999999999")
    assert r.outcome == "refused" and r.reply == "未找到 #99999999999999999999,请核对编号。"
