"""The shapes the emulator's endpoints share with DingTalk: a new-style OpenAPI refusal and a
Stream CALLBACK frame (a bot message or a card press)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from aiohttp import web


def refusal(code: str, message: str) -> web.Response:
    """api.dingtalk.com's 400: {code, message, requestid}."""
    return web.json_response({"code": code, "message": message, "requestid": uuid.uuid4().hex}, status=400)


def callback_frame(topic: str, message_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """A Stream push as the gateway frames it (specVersion 1.0, type CALLBACK, data a JSON string)."""
    return {
        "specVersion": "1.0",
        "type": "CALLBACK",
        "headers": {
            "topic": topic,
            "messageId": message_id,
            "contentType": "application/json",
            "time": str(int(time.time() * 1000)),
            "appId": "sandbox-app",
        },
        "data": json.dumps(data, ensure_ascii=False),
    }
