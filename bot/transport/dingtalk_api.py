"""DingTalk's HTTP side, with aiohttp: access token, session webhook, OpenAPI group and
one-to-one send, custom group robots with signing. Every failure is classified so the
sender knows whether to retry, fall back or give up."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import aiohttp

RATE_LIMIT_MARKERS = ("too.fast", "throttl", "qps", "限流", "ratelimit")
TOKEN_MARGIN_S = 300  # refresh the access token five minutes before it expires


class SendError(Exception):
    def __init__(self, reason: str, *, retryable: bool, expired: bool = False, blocked_s: float = 0) -> None:
        super().__init__(reason)
        self.retryable = retryable
        self.expired = expired  # the session webhook is no longer valid: use the OpenAPI
        self.blocked_s = blocked_s  # the server asked us to keep away this long


class FileTooLarge(SendError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason, retryable=False)


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str
    robot_code: str


def robot_sign(secret: str, timestamp_ms: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode())


SESSION_HOSTS = frozenset({"oapi.dingtalk.com", "api.dingtalk.com"})


class DingTalkApi:
    def __init__(
        self, http: aiohttp.ClientSession, endpoint: str, credentials: Credentials, timeout_s: float = 10
    ) -> None:
        self.http = http
        self.endpoint = endpoint.rstrip("/")
        self.credentials = credentials
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._token: tuple[str, float] | None = None
        self._token_lock = asyncio.Lock()

    async def access_token(self) -> str:
        async with self._token_lock:
            if self._token and time.monotonic() < self._token[1]:
                return self._token[0]
            body = {"appKey": self.credentials.client_id, "appSecret": self.credentials.client_secret}
            data = await self._post(f"{self.endpoint}/v1.0/oauth2/accessToken", body)
            token, expires_in = data.get("accessToken"), int(data.get("expireIn") or 7200)
            if not token:
                raise SendError("no accessToken in answer", retryable=True)
            self._token = (token, time.monotonic() + max(60, expires_in - TOKEN_MARGIN_S))
            return token

    def trusts(self, session_webhook: str) -> bool:
        """Is this a session webhook of DingTalk's (https://oapi.dingtalk.com/robot/sendBySession
        ?session=…, as the callback payload carries it), or of the endpoint we were configured
        with (the emulator)? A reply never goes to whatever host a payload happens to name."""
        url, ours = urllib.parse.urlsplit(session_webhook), urllib.parse.urlsplit(self.endpoint)
        if (url.scheme, url.netloc) == (ours.scheme, ours.netloc):
            return True
        return url.scheme == "https" and url.hostname in SESSION_HOSTS and url.port in (None, 443)

    async def session_send(self, url: str, body: dict[str, Any]) -> None:
        data = await self._post(url, body)
        self._check_errcode(data)

    async def group_send(self, conversation_id: str, title: str, text: str) -> None:
        body = {
            "robotCode": self.credentials.robot_code,
            "openConversationId": conversation_id,
            **_sample_markdown(title, text),
        }
        await self._openapi("/v1.0/robot/groupMessages/send", body)

    async def user_send(self, user_ids: list[str], title: str, text: str) -> None:
        body = {"robotCode": self.credentials.robot_code, "userIds": user_ids, **_sample_markdown(title, text)}
        await self._openapi("/v1.0/robot/oToMessages/batchSend", body)

    async def robot_send(self, webhook: str, secret: str | None, body: dict[str, Any]) -> None:
        url = webhook
        if secret:
            ts = int(time.time() * 1000)
            url += ("&" if "?" in url else "?") + f"timestamp={ts}&sign={robot_sign(secret, ts)}"
        data = await self._post(url, body)
        self._check_errcode(data)

    async def download_url(self, download_code: str) -> str:
        """The temporary URL of a file a user sent the bot. DingTalk's 下载机器人接收消息的文件内容
        (https://open.dingtalk.com/document/orgapp/download-the-file-content-of-the-robot-receiving-message):
        `POST /v1.0/robot/messageFiles/download` with header x-acs-dingtalk-access-token and body
        {downloadCode, robotCode} answers {downloadUrl}; the code is a 临时下载码 (temporary) and the
        URL a 临时下载链接. A wrong or expired code is refused with a 4xx whose message reads
        下载码有误或者已经过期 (we did not find the exact error code documented, so any 4xx that is
        neither a token nor a rate-limit answer counts as a bad code: SendError retryable=False)."""
        data = await self._openapi(
            "/v1.0/robot/messageFiles/download",
            {"robotCode": self.credentials.robot_code, "downloadCode": download_code},
        )
        url = str(data.get("downloadUrl") or "")
        if not url:
            raise SendError("no downloadUrl in answer", retryable=True)
        return url

    async def fetch_file(self, url: str, max_bytes: int) -> bytes:
        """GET a download URL, at most max_bytes (more is refused, not truncated)."""
        try:
            async with self.http.get(url, timeout=self.timeout) as resp:
                if resp.status >= 500:
                    raise SendError(f"HTTP {resp.status}", retryable=True)
                if resp.status >= 400:  # the temporary URL expired: ask for a new one next time
                    raise SendError(f"download HTTP {resp.status}", retryable=True)
                if resp.content_length is not None and resp.content_length > max_bytes:
                    raise FileTooLarge(f"{resp.content_length} bytes")
                data = bytearray()
                async for chunk in resp.content.iter_chunked(65536):
                    data.extend(chunk)
                    if len(data) > max_bytes:
                        raise FileTooLarge(f"over {max_bytes} bytes")
                return bytes(data)
        except (TimeoutError, aiohttp.ClientError) as e:
            raise SendError(f"{type(e).__name__}", retryable=True) from e

    async def _openapi(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        token = await self.access_token()
        try:
            return await self._post(f"{self.endpoint}{path}", body, {"x-acs-dingtalk-access-token": token})
        except SendError as e:
            if "HTTP 401" in str(e) or "token" in str(e).lower():
                self._token = None  # a bad or revoked token: fetch a new one on the retry
            raise

    async def _post(self, url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
        try:
            async with self.http.post(url, json=body, headers=headers, timeout=self.timeout) as resp:
                text = await resp.text()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError) as e:
            raise SendError(f"{type(e).__name__}", retryable=True) from e
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        if status >= 500:
            raise SendError(f"HTTP {status}", retryable=True)
        if status == 429 or (status >= 400 and _rate_limited(data)):
            raise SendError(f"HTTP {status} rate limited", retryable=True, blocked_s=60)
        if status in (400, 401) and "token" in text.lower():
            raise SendError(f"HTTP {status} token", retryable=True)
        if status >= 400:
            raise SendError(f"HTTP {status} {str(data.get('code') or '')[:60]}", retryable=False)
        return data

    @staticmethod
    def _check_errcode(data: dict[str, Any]) -> None:
        code = data.get("errcode", 0)
        if code in (0, "0", None):
            return
        if code in (300001, "300001"):
            raise SendError("session webhook expired", retryable=False, expired=True)
        if code in (130101, "130101"):  # custom robot over 20/minute: blocked for 10 minutes
            raise SendError("errcode 130101", retryable=True, blocked_s=600)
        raise SendError(f"errcode {code}", retryable=False)


def _rate_limited(data: dict[str, Any]) -> bool:
    text = f"{data.get('code', '')} {data.get('message', '')}".lower()
    return any(marker in text for marker in RATE_LIMIT_MARKERS)


def _sample_markdown(title: str, text: str) -> dict[str, str]:
    return {"msgKey": "sampleMarkdown", "msgParam": json.dumps({"title": title, "text": text}, ensure_ascii=False)}


def markdown_body(title: str, text: str, at_user_ids: list[str]) -> dict[str, Any]:
    return {
        "msgtype": "markdown",
        "markdown": {"title": title, "text": text},
        "at": {"atUserIds": at_user_ids, "isAtAll": False},
    }
