"""A DingTalk bot-message payload (the JSON of a stream frame's `data`, or an HTTP callback
body) → Incoming. Tolerates the fields DingTalk adds and the ones it leaves out; refuses what
cannot be a message."""

from __future__ import annotations

from typing import Any

from handlers.incoming import AtUser, Incoming
from models.clock import from_ms

BOT_TOPIC = "/v1.0/im/bot/messages/get"


class BadPayload(ValueError):
    """Not a bot message we can store (the reason never includes the content)."""


def _str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str | int):
        raise BadPayload(f"{key} has type {type(value).__name__}")
    return str(value)


def _ms(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value in (None, ""):
        return None
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
    expires = _ms(data, "sessionWebhookExpiredTime")
    return Incoming(
        msg_id=msg_id,
        conversation_id=conversation_id,
        conversation_type=_str(data, "conversationType") or "2",
        sender_staff_id=_str(data, "senderStaffId"),
        sender_union_id=_str(data, "senderUnionId"),
        sender_id=_str(data, "senderId"),
        sender_nick=_str(data, "senderNick") or "",
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
        return text.get("content", ""), []
    content = data.get("content")
    if msgtype == "picture":
        if not isinstance(content, dict):
            raise BadPayload("picture content missing")
        code = content.get("downloadCode") or content.get("pictureDownloadCode")
        return "", [str(code)] if code else []
    if msgtype == "richText":
        parts = content.get("richText") if isinstance(content, dict) else None
        if not isinstance(parts, list):
            raise BadPayload("richText content missing")
        texts, codes = [], []
        for part in parts:
            if not isinstance(part, dict):
                continue
            if isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif part.get("downloadCode"):
                codes.append(str(part["downloadCode"]))
        return "".join(texts), codes
    return "", []  # audio, video, file, unknown: answered politely by the dispatcher


def _at_users(value: Any) -> list[AtUser]:
    if not isinstance(value, list):
        return []
    return [
        AtUser(staff_id=_str(a, "staffId"), dingtalk_id=_str(a, "dingtalkId"), union_id=_str(a, "unionId"))
        for a in value
        if isinstance(a, dict)
    ]
