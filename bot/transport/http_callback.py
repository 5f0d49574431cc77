"""HTTP callback mode: DingTalk POSTs the bot message with `timestamp` and `sign` headers.
A stale or forged request gets 401 and nothing is stored; a good one goes through the same
inbox path as stream frames."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time

from aiohttp import web

from bot.transport.payload import BadPayload, decode, to_incoming
from bot.transport.pipeline import Pipeline

log = logging.getLogger(__name__)
MAX_SKEW_MS = 3600_000
MAX_BODY = 256 * 1024
PIPELINE_KEY = web.AppKey("pipeline", Pipeline)
SECRET_KEY = web.AppKey("secret", str)


def callback_sign(secret: str, timestamp: str) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signature_ok(secret: str, timestamp: str | None, sign: str | None, now_ms: int) -> bool:
    if not timestamp or not sign or not timestamp.isdigit():
        return False
    if abs(now_ms - int(timestamp)) > MAX_SKEW_MS:
        return False
    return hmac.compare_digest(callback_sign(secret, timestamp).encode(), sign.encode())


async def callback(request: web.Request) -> web.Response:
    secret = request.app[SECRET_KEY]
    if not signature_ok(secret, request.headers.get("timestamp"), request.headers.get("sign"), int(time.time() * 1000)):
        log.warning("rejected a callback with a missing, stale or forged signature")
        return web.json_response({"error": "unauthorized"}, status=401)
    if (request.content_length or 0) > MAX_BODY:
        return web.json_response({"error": "body too large"}, status=413)
    try:
        incoming = to_incoming(decode(await request.text()))
    except BadPayload as e:  # its reason never carries the content
        log.warning("rejected a callback body: %s", e)
        return web.json_response({"error": "bad request"}, status=400)
    except ValueError as e:
        log.warning("rejected a callback body: %s", type(e).__name__)
        return web.json_response({"error": "bad request"}, status=400)
    await request.app[PIPELINE_KEY].accept(incoming)
    return web.json_response({})


def callback_app(pipeline: Pipeline, secret: str) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app[PIPELINE_KEY] = pipeline
    app[SECRET_KEY] = secret
    app.router.add_post("/dingtalk/callback", callback)
    return app
