"""DingTalk's HTTP side, with aiohttp: access token, session webhook, OpenAPI group and
one-to-one send, custom group robots with signing. Every failure is classified so the
sender knows whether to retry, fall back or give up, on DingTalk's `code` / `errcode` only:
the message text beside it is Chinese prose that DingTalk rewords at will.

The codes, and where they are documented:
- 附录B:如何处理钉钉服务端API限流 (https://open.dingtalk.com/document/development/how-to-process-api-throttling-on-the-dingtalk-server):
  the monthly call quota of a standard-edition organisation answers
  `Forbidden.AccessDenied.ApiCountLimitForOrg` (old oapi style: errcode 90020); the per-app QPS
  limit `Forbidden.AccessDenied.QpsLimitForAppkeyAndApi` (90018) and the global one
  `Forbidden.AccessDenied.QpsLimitForApi` (90002), both over after about a second; the IP limit
  answers no code at all but an HTML page (or a `{"status":1111,"punish":"deny","wait":5}`
  body) and bans the IP for five minutes. Token, login and contact APIs are not counted.
- 批量发送人与机器人会话中机器人消息 (oToMessages/batchSend): a 200 whose
  `flowControlledStaffIdList` (推送频繁,被限流的用户) and `invalidStaffIdList` (无效的用户) name
  the users it did NOT reach (the official SDK's BatchSendOTOResponseBody, com.aliyun.dingtalkrobot_1_0).
- 自定义机器人发送群消息 (https://open.dingtalk.com/document/orgapp/custom-robots-send-group-messages,
  English edition help.dingtalk.io/open/development/custom-robots-send-group-messages):
  20 messages a minute, then a 10-minute block (errcode 130101, and 410100 in the current
  table); errcode -1 is 系统繁忙 (retry); 310000 a bad sign, keyword or IP; the body takes an
  optional `msgUuid`, "the idempotency key … when an API call times out or returns an unknown
  error, retry with the same msgUuid to avoid sending duplicate chats". groupMessages/send and
  batchSend document no such key, nor does the session webhook.
- 新增钉钉待办任务 (https://open.dingtalk.com/document/orgapp-server/add-dingtalk-to-do-task; the
  official SDK's CreateTodoTaskRequest, com.aliyun.dingtalktodo_1_0):
  `POST /v1.0/todo/users/{unionId}/tasks?operatorId=…` with subject, description, dueTime (ms),
  executorIds (unionIds), detailUrl {appUrl, pcUrl} and sourceId (接入业务系统侧的唯一标识id)
  answers the task with its `id`; a sourceId already used answers 400 todo.taskCreate.paramError
  "task exist"; 500 todo.taskCreate.systemError. 更新钉钉待办任务: `PUT …/tasks/{taskId}
  ?operatorId=…` with subject, description, dueTime, done answers {"result": true}; an unknown
  task is 400 "task not exist". The SDK marks every body field optional.
- 发送工作通知 (asyncsend_v2, on the oapi host): `POST {oapi}/topapi/message/corpconversation/
  asyncsend_v2?access_token=…` with agent_id, userid_list (comma-separated userIds, at most 100)
  and msg {msgtype: markdown, markdown: {title, text}} answers {errcode: 0, task_id}; errors are
  HTTP 200 with a non-zero errcode (the oapi style; 40014 a bad access_token). The send is
  asynchronous: users it filters out are only named later, by getsendresult's
  forbidden_user_id_list, whose rules are "给同一用户发相同内容消息一天仅允许一次" and, for an
  internal (企业) app, at most 500 messages a day to one user (the official SDK's
  AsyncSendResult field docs, as docs.rs/dingtalk-rs quotes them).
- DING (`POST /v1.0/robot/ding/send`, the official SDK's RobotSendDingRequest,
  com.aliyun.dingtalkrobot_1_0): robotCode, remindType (1 in-app, 2 SMS, 3 phone),
  receiverUserIdList, content answers {openDingId, failedList} (the users not reached, by
  userId); paid editions only.
- 创建并投放卡片 (the official SDK's CreateAndDeliverRequest, aliyun/dingtalk-sdk
  card_1_0/models.py; the stream SDK's card_replier.py sends the same fields in two calls):
  `POST /v1.0/card/instances/createAndDeliver` with outTrackId, cardTemplateId, callbackType
  (STREAM), cardData.cardParamMap (Map<String, String>), openSpaceId
  `dtv1.card//IM_GROUP.{openConversationId}` or `dtv1.card//IM_ROBOT.{userId}`, userIdType (1:
  userId), imGroupOpenSpaceModel / imGroupOpenDeliverModel {robotCode, atUserIds: {userId:
  name}} or imRobotOpenSpaceModel / imRobotOpenDeliverModel {spaceType IM_ROBOT, robotCode};
  answers {success, result: {outTrackId, deliverResults: [{spaceType, spaceId, success,
  errorMsg, carrierId}]}}. 更新卡片: `PUT /v1.0/card/instances` with outTrackId, cardData and
  cardUpdateOptions {updateCardDataByKey}."""

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

TOKEN_MARGIN_S = 300  # refresh the access token five minutes before it expires

# OpenAPI `code`s (HTTP 4xx bodies) and oapi `errcode`s, from the documents named above.
QUOTA_CODES = frozenset({"Forbidden.AccessDenied.ApiCountLimitForOrg", "90020"})
QPS_CODES = frozenset({"Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", "Forbidden.AccessDenied.QpsLimitForApi"})
QPS_ERRCODES = frozenset({90018, 90002})
TOKEN_CODES = frozenset({"InvalidAuthentication", "invalidParameter.token.invalid"})
ROBOT_TOO_FAST = frozenset({130101, 410100})  # custom robot over 20/minute: blocked 10 minutes
BUSY_ERRCODES = frozenset({-1})  # 系统繁忙: try again
SESSION_EXPIRED = 300001
OAPI_TOKEN_ERRCODES = frozenset({40014, 42001})  # 不合法的access_token, access_token 超时
WORK_USERS_MAX = 100  # asyncsend_v2's userid_list
DING_IN_APP = 1  # remindType: 应用内 DING (2 SMS and 3 phone cost more and need more rights)
ROBOT_BLOCK_S = 600
IP_BAN_S = 300  # the IP limit: "当前IP的调用将会被禁止5分钟"
QPS_WAIT_S = 1.0


class SendError(Exception):
    def __init__(
        self, reason: str, *, retryable: bool, expired: bool = False, blocked_s: float = 0, quota: bool = False
    ) -> None:
        super().__init__(reason)
        self.retryable = retryable
        self.expired = expired  # the session webhook is no longer valid: use the OpenAPI
        self.blocked_s = blocked_s  # the server asked us to keep away this long
        self.quota = quota  # the organisation's monthly OpenAPI quota is spent: pause that channel
        self.token = False  # the access token was refused: fetch a new one


@dataclass(frozen=True)
class Undelivered:
    """What a 200 from batchSend says was not delivered: throttled users (try them again
    later) and users DingTalk does not know (never delivered)."""

    flow_controlled: list[str]
    invalid: list[str]


class FileTooLarge(SendError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason, retryable=False)


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str
    robot_code: str

    @property
    def robot(self) -> str:
        """The robotCode to send with: an internal app's robot is its AppKey (ClientID), so an
        unset robot code means that one, not an empty field every send is refused for."""
        return self.robot_code or self.client_id


def robot_sign(secret: str, timestamp_ms: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode())


SESSION_HOSTS = frozenset({"oapi.dingtalk.com", "api.dingtalk.com"})


class DingTalkApi:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        endpoint: str,
        credentials: Credentials,
        timeout_s: float = 10,
        oapi_endpoint: str | None = None,
    ) -> None:
        self.http = http
        self.endpoint = endpoint.rstrip("/")
        # The older oapi host (work notifications); the emulator serves both on one address.
        self.oapi_endpoint = (oapi_endpoint or self.endpoint).rstrip("/")
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
            "robotCode": self.credentials.robot,
            "openConversationId": conversation_id,
            **_sample_markdown(title, text),
        }
        await self._openapi("/v1.0/robot/groupMessages/send", body)

    async def user_send(self, user_ids: list[str], title: str, text: str) -> Undelivered:
        """Send one to one; whom the 200 says it did not reach (an empty Undelivered: everyone)."""
        body = {"robotCode": self.credentials.robot, "userIds": user_ids, **_sample_markdown(title, text)}
        data = await self._openapi("/v1.0/robot/oToMessages/batchSend", body)
        return Undelivered(_ids(data.get("flowControlledStaffIdList")), _ids(data.get("invalidStaffIdList")))

    async def robot_send(self, webhook: str, secret: str | None, body: dict[str, Any], msg_uuid: str = "") -> None:
        """A custom robot's post; `msg_uuid` is its documented idempotency key, so a resend of the
        same outbox row (after a crash or a timeout) is not shown twice."""
        url = webhook
        if secret:
            ts = int(time.time() * 1000)
            url += ("&" if "?" in url else "?") + f"timestamp={ts}&sign={robot_sign(secret, ts)}"
        data = await self._post(url, {**body, "msgUuid": msg_uuid} if msg_uuid else body)
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
            {"robotCode": self.credentials.robot, "downloadCode": download_code},
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

    async def todo_create(self, union_id: str, body: dict[str, Any]) -> str:
        """A to-do in this person's list (they are its creator and, by `executorIds`, its
        executor); the task id DingTalk gave it."""
        path = f"/v1.0/todo/users/{urllib.parse.quote(union_id)}/tasks?operatorId={urllib.parse.quote(union_id)}"
        data = await self._openapi(path, body)
        task_id = str(data.get("id") or "")
        if not task_id:
            raise SendError("no id in to-do answer", retryable=True)
        return task_id

    async def todo_update(self, union_id: str, task_id: str, body: dict[str, Any]) -> None:
        uid, tid = urllib.parse.quote(union_id), urllib.parse.quote(task_id)
        await self._openapi(f"/v1.0/todo/users/{uid}/tasks/{tid}?operatorId={uid}", body, method="PUT")

    async def work_send(self, agent_id: str, user_ids: list[str], title: str, text: str) -> str:
        """A work notification (工作通知) to these users (at most WORK_USERS_MAX); its task_id."""
        if not user_ids or len(user_ids) > WORK_USERS_MAX:
            raise SendError(f"work notification to {len(user_ids)} users", retryable=False)
        body = {
            "agent_id": agent_id,
            "userid_list": ",".join(user_ids),
            "msg": {"msgtype": "markdown", "markdown": {"title": title, "text": text}},
        }
        token = await self.access_token()
        url = f"{self.oapi_endpoint}/topapi/message/corpconversation/asyncsend_v2?access_token={token}"
        data = await self._post(url, body)
        if _int(data.get("errcode", 0)) in OAPI_TOKEN_ERRCODES:
            self._token = None
            error = SendError(f"errcode {data.get('errcode')} token", retryable=True)
            error.token = True
            raise error
        self._check_errcode(data)
        return str(data.get("task_id") or "")

    async def ding_send(self, user_ids: list[str], content: str) -> list[str]:
        """An in-app DING to these users; those DingTalk says it failed for (failedList)."""
        body = {
            "robotCode": self.credentials.robot,
            "remindType": DING_IN_APP,
            "receiverUserIdList": user_ids,
            "content": content,
        }
        data = await self._openapi("/v1.0/robot/ding/send", body)
        # failedList: the users it did not reach, keyed by userId (a list is read the same way)
        failed = data.get("failedList")
        return [str(u) for u in failed] if isinstance(failed, dict | list) else []

    async def card_deliver(self, body: dict[str, Any]) -> None:
        """创建并投放卡片 (bot/transport/cards.py builds the body). A 200 can still say the card
        reached no space: `result.deliverResults[].success` false, with an errorMsg."""
        data = await self._openapi("/v1.0/card/instances/createAndDeliver", body)
        results = (data.get("result") or {}).get("deliverResults") if isinstance(data.get("result"), dict) else None
        failed = [r for r in results or [] if isinstance(r, dict) and r.get("success") is False]
        if failed:
            raise SendError(f"card not delivered: {str(failed[0].get('errorMsg') or '')[:60]}", retryable=True)

    async def card_update(self, body: dict[str, Any]) -> None:
        """更新卡片: PUT /v1.0/card/instances {outTrackId, cardData, cardUpdateOptions}."""
        await self._openapi("/v1.0/card/instances", body, method="PUT")

    async def _openapi(self, path: str, body: dict[str, Any], method: str = "POST") -> dict[str, Any]:
        token = await self.access_token()
        try:
            headers = {"x-acs-dingtalk-access-token": token}
            return await self._post(f"{self.endpoint}{path}", body, headers, method=method)
        except SendError as e:
            if e.token:
                self._token = None  # a bad or revoked token: fetch a new one on the retry
            raise

    async def _post(
        self, url: str, body: dict[str, Any], headers: dict[str, str] | None = None, method: str = "POST"
    ) -> dict[str, Any]:
        try:
            async with self.http.request(method, url, json=body, headers=headers, timeout=self.timeout) as resp:
                text = await resp.text()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError) as e:
            raise SendError(f"{type(e).__name__}", retryable=True) from e
        data = _json_object(text)
        if status >= 500:
            raise SendError(f"HTTP {status}", retryable=True)
        if status >= 400:
            raise _openapi_error(status, data)
        if data is None:
            # Every DingTalk answer we call is a JSON object; an empty or HTML 200 is a proxy,
            # the IP limit's page or a cut answer: the message did not go out.
            reason = "HTTP 200 not JSON" if text.strip() else "HTTP 200 empty"
            raise SendError(reason, retryable=True, blocked_s=_html_ban(text))
        if data.get("punish") == "deny":  # the IP limit in its JSON form: banned for `wait` minutes
            raise SendError("IP limit", retryable=True, blocked_s=_minutes(data.get("wait")) or IP_BAN_S)
        return data

    @staticmethod
    def _check_errcode(data: dict[str, Any]) -> None:
        """The oapi style (session webhook, custom robot): HTTP 200 and an `errcode`."""
        raw = data.get("errcode", 0)
        code = _int(raw)
        if code == 0:
            return
        if code == SESSION_EXPIRED:
            raise SendError("session webhook expired", retryable=False, expired=True)
        if code in ROBOT_TOO_FAST:
            raise SendError(f"errcode {code}", retryable=True, blocked_s=ROBOT_BLOCK_S)
        if code in BUSY_ERRCODES:
            raise SendError(f"errcode {code}", retryable=True)
        if code in QPS_ERRCODES:
            raise SendError(f"errcode {code}", retryable=True, blocked_s=QPS_WAIT_S)
        if str(code) in QUOTA_CODES:
            raise SendError(f"errcode {code}", retryable=True, quota=True)
        raise SendError(f"errcode {str(raw)[:40]}", retryable=False)


def _openapi_error(status: int, data: dict[str, Any] | None) -> SendError:
    """An OpenAPI 4xx, classified by its `code`."""
    code = str((data or {}).get("code") or "")
    if code in QUOTA_CODES:
        return SendError(f"HTTP {status} {code}", retryable=True, quota=True)
    if status == 429 or code in QPS_CODES:
        return SendError(f"HTTP {status} rate limited", retryable=True, blocked_s=QPS_WAIT_S if code else 60)
    if status == 401 or code in TOKEN_CODES:
        error = SendError(f"HTTP {status} token", retryable=True)
        error.token = True
        return error
    return SendError(f"HTTP {status} {code[:60]}".rstrip(), retryable=False)


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        data = json.loads(text) if text.strip() else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _html_ban(text: str) -> float:
    """An HTML 200 is most likely the IP limit's page (5 minutes); an empty one is not."""
    return IP_BAN_S if "<" in text else 0


def _minutes(value: Any) -> float:
    number = _int(value)
    return 60.0 * number if number > 0 else 0.0


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0 if value in (None, "") else -99999  # a code we cannot read is no success


def _ids(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _sample_markdown(title: str, text: str) -> dict[str, str]:
    return {"msgKey": "sampleMarkdown", "msgParam": json.dumps({"title": title, "text": text}, ensure_ascii=False)}


def markdown_body(title: str, text: str, at_user_ids: list[str]) -> dict[str, Any]:
    return {
        "msgtype": "markdown",
        "markdown": {"title": title, "text": text},
        "at": {"atUserIds": at_user_ids, "isAtAll": False},
    }
