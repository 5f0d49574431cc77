"""A DingTalk bot-message payload (the JSON of a stream frame's `data`, or an HTTP callback
body) → Incoming. Tolerates the fields DingTalk adds and the ones it leaves out; refuses what
cannot be a message."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from typing import Any

from handlers.grammar import MAX_LENGTH
from handlers.incoming import AtUser, Incoming
from models.clock import from_ms

BOT_TOPIC = "/v1.0/im/bot/messages/get"


class BadPayload(ValueError):
    """Not a bot message we can store (the reason never includes the content)."""


# An identifier is stored, logged and compared: a lone surrogate cannot be stored as UTF-8 (it
# would fail the whole burst's shared insert), a control character (C0 or C1) or a line
# separator would forge a log line, and a format character (a bidi override, a zero-width
# space or joiner, a BOM) makes two ids that look the same differ, or reverses the log line
# it is printed in. DingTalk's own ids (msgId, cid…, staffId, unionId) are plain printable text.
_BAD_ID_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# A nick is echoed in replies: no line breaks, no controls, no bidi overrides that reverse the line.
_NICK_DROP = re.compile(r"[\x00-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
MAX_ID = 256
# Text longer than the grammar takes is answered with a request to shorten it, never read: what
# is kept of it (in the inbox) is bounded, whatever size the frame was.
KEPT_TEXT = 4 * MAX_LENGTH


def decode(raw: str | bytes) -> Any:
    """JSON text → a value; nesting too deep for the parser is refused like any bad JSON."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise BadPayload(f"not JSON ({type(e).__name__})") from None


def _str(data: dict[str, Any], key: str) -> str | None:
    """An identifier: a string (or an integer) of printable characters."""
    value = data.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise BadPayload(f"{key} has type {type(value).__name__}")
    text = str(value)
    if len(text) > MAX_ID:
        raise BadPayload(f"{key} is too long")
    if bad := next((c for c in text if unicodedata.category(c) in _BAD_ID_CATEGORIES), None):
        # The reason names the character's code point, never the id itself.
        raise BadPayload(f"{key} has the {unicodedata.category(bad)} character U+{ord(bad):04X}")
    return text


def _text(value: Any) -> str:
    """Free text (a message, a nick): kept, with what cannot be stored as UTF-8 marked as such
    (U+FFFD, which the dispatcher answers with a request to send again)."""
    return _SURROGATE.sub("\ufffd", value[:KEPT_TEXT]) if isinstance(value, str) else ""


def _ms(data: dict[str, Any], key: str) -> int | None:
    """Milliseconds since the epoch: an integer, or the digits of one; never a bool or a float
    that is not a whole number (1e400 parses as infinity)."""
    value = data.get(key)
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        raise BadPayload(f"{key} is not a number")
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise BadPayload(f"{key} is not a whole number")
        value = int(value)
    if isinstance(value, str) and not value.isascii():
        raise BadPayload(f"{key} is not a number")
    try:
        ms = int(value)
    except (TypeError, ValueError) as e:
        raise BadPayload(f"{key} is not a number") from e
    if not 0 < ms < 10**14:
        raise BadPayload(f"{key} out of range")
    return ms


def to_incoming(data: Any) -> Incoming:
    if not isinstance(data, dict):
        raise BadPayload("payload is not an object")
    msg_id, conversation_id = _str(data, "msgId"), _str(data, "conversationId")
    if not msg_id or not conversation_id:
        raise BadPayload("msgId or conversationId missing")
    create_at = _ms(data, "createAt")
    if create_at is None:
        raise BadPayload("createAt missing")
    msgtype = _str(data, "msgtype") or "unknown"
    text, pictures = _content(data, msgtype)
    if msgtype == "audio" and text.strip():
        msgtype = "text"  # DingTalk's own transcript stands for what was said
    expires = _ms(data, "sessionWebhookExpiredTime")
    return Incoming(
        msg_id=msg_id,
        conversation_id=conversation_id,
        conversation_type=_str(data, "conversationType") or "2",
        sender_staff_id=_str(data, "senderStaffId"),
        sender_union_id=_str(data, "senderUnionId"),
        sender_id=_str(data, "senderId"),
        sender_nick=_NICK_DROP.sub("", _text(data.get("senderNick")))[:64],
        text=text,
        create_at=from_ms(create_at),
        at_users=tuple(_at_users(data.get("atUsers"))),
        bot_user_id=_str(data, "chatbotUserId"),
        session_webhook=_str(data, "sessionWebhook"),
        session_webhook_expires=from_ms(expires) if expires else None,
        msgtype=msgtype,
        pictures=tuple(pictures),
    )


def _content(data: dict[str, Any], msgtype: str) -> tuple[str, list[str]]:
    if msgtype == "text":
        text = data.get("text")
        if not isinstance(text, dict) or not isinstance(text.get("content", ""), str):
            raise BadPayload("text.content missing")
        return _text(text.get("content", "")), []
    content = data.get("content")
    if msgtype == "picture":
        if not isinstance(content, dict):
            raise BadPayload("picture content missing")
        code = _str(content, "downloadCode") or _str(content, "pictureDownloadCode")
        return "", [code] if code else []
    if msgtype == "richText":
        parts = content.get("richText") if isinstance(content, dict) else None
        if not isinstance(parts, list):
            raise BadPayload("richText content missing")
        texts, codes = [], []
        for part in parts:
            if not isinstance(part, dict):
                continue
            if isinstance(part.get("text"), str):
                texts.append(_text(part["text"]))
            elif code := _str(part, "downloadCode"):
                codes.append(code)
        return "".join(texts)[:KEPT_TEXT], codes
    if msgtype == "audio" and isinstance(content, dict):
        # A voice message (one to one: a group's voice message cannot @ the bot) carries DingTalk's
        # speech-to-text in content.recognition (as other DingTalk bots read it, e.g.
        # langbot-app/LangBot#2118, NousResearch/hermes-agent#24861); without it, a polite line.
        return _text(content.get("recognition") if isinstance(content.get("recognition"), str) else ""), []
    return "", []  # video, file, unknown, audio without a transcript: answered politely by the dispatcher


def _at_users(value: Any) -> list[AtUser]:
    if not isinstance(value, list):
        return []
    return [
        AtUser(staff_id=_str(a, "staffId"), dingtalk_id=_str(a, "dingtalkId"), union_id=_str(a, "unionId"))
        for a in value
        if isinstance(a, dict)
    ]
