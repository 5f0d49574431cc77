"""The emulator's interactive cards (互动卡片): createAndDeliver and the update in place, as
bot/transport/dingtalk_api.py cites them, the cards kept so that tests and the sandbox can
read them, and a button press delivered to the bot as DingTalk's Stream callback
(`/v1.0/card/instances/callback`, only to a client that subscribed to that topic).

No kinder than DingTalk: a wrong access token, a missing outTrackId, cardTemplateId or
openSpaceId, an openSpaceId that is not `dtv1.card//IM_GROUP.…` or `dtv1.card//IM_ROBOT.…`, a
space without its deliver model or robotCode, a cardParamMap value that is not a string (the
SDK types it Map<String, String>), atUserIds that is not a map of userId → name, an outTrackId
already used, or an update of an unknown card is refused with HTTP 400 and DingTalk's OpenAPI
error shape {code, message, requestid}."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.sandbox.shapes import callback_frame, refusal

if TYPE_CHECKING:
    from bot.sandbox.emulator import Emulator

DELIVER = "/v1.0/card/instances/createAndDeliver"
UPDATE = "/v1.0/card/instances"
TOPIC = "/v1.0/card/instances/callback"
SPACES = {"IM_GROUP": "imGroupOpenDeliverModel", "IM_ROBOT": "imRobotOpenDeliverModel"}
# Our code for a refused card call: the shape {code, message, requestid} is DingTalk's OpenAPI
# error shape; its code for each case of the card API is not in what we could find.
PARAM = "param.invalid"


@dataclass
class Card:
    out_track_id: str
    template_id: str
    space_type: str  # IM_GROUP | IM_ROBOT
    space_id: str  # the openConversationId, or the userId of a 1:1 chat
    params: dict[str, str]
    at_user_ids: dict[str, str]
    updates: list[dict[str, str]] = field(default_factory=list)  # each update's cardParamMap, in order
    body: dict[str, Any] = field(default_factory=dict)  # the createAndDeliver body as received

    def buttons(self) -> list[dict[str, str]]:
        """The buttons the template shows (none once the step is answered)."""
        if self.params.get("answered") == "true":
            return []
        try:
            return list(json.loads(self.params.get("buttons") or "[]"))
        except ValueError:
            return []


@dataclass
class Cards:
    emulator: Emulator
    cards: dict[str, Card] = field(default_factory=dict)
    templates: set[str] | None = None  # the published templates; None: any id is taken as one

    def routes(self, app: web.Application) -> None:
        app.router.add_post(DELIVER, self._deliver)
        app.router.add_put(UPDATE, self._update)

    def in_space(self, space_id: str) -> list[Card]:
        return [c for c in self.cards.values() if c.space_id == space_id]

    async def _deliver(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        track, template, space = body.get("outTrackId"), body.get("cardTemplateId"), body.get("openSpaceId")
        for name, value in (("outTrackId", track), ("cardTemplateId", template), ("openSpaceId", space)):
            if not isinstance(value, str) or not value:
                return _refusal(f"{name} is required")
        assert isinstance(track, str) and isinstance(template, str) and isinstance(space, str)
        if self.templates is not None and template not in self.templates:
            return _refusal("cardTemplateId not exist")
        if body.get("callbackType", "STREAM") not in ("STREAM", "HTTP"):
            return _refusal("callbackType is invalid")
        if body.get("callbackType") == "HTTP" and not body.get("callbackRouteKey"):
            return _refusal("callbackRouteKey is required")
        prefix, _, rest = space.partition("//")
        space_type, _, space_id = rest.partition(".")
        if prefix != "dtv1.card" or space_type not in SPACES or not space_id:
            return _refusal("openSpaceId is invalid")
        model = body.get(SPACES[space_type])
        if not isinstance(model, dict) or model.get("robotCode") != self._robot_code():
            return _refusal(f"{SPACES[space_type]}.robotCode is invalid")
        if space_type == "IM_ROBOT" and model.get("spaceType") != "IM_ROBOT":
            return _refusal("imRobotOpenDeliverModel.spaceType is invalid")
        at = model.get("atUserIds", {})
        if not isinstance(at, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in at.items()):
            return _refusal("atUserIds is invalid")
        params = _params(body)
        if params is None:
            return _refusal("cardData.cardParamMap is invalid")
        if track in self.cards:
            return _refusal("outTrackId already exists")
        self.cards[track] = Card(track, template, space_type, space_id, params, dict(at), body=body)
        if space_type == "IM_GROUP":  # the sandbox page shows it in its group, with its buttons
            entry = {"from": "bot", "title": params.get("title", ""), "text": params.get("content", "")}
            self.emulator.history[space_id].append({**entry, "at": list(at), "card": track})
        await self.emulator._notify()
        result = {"spaceType": space_type, "spaceId": space_id, "success": True, "carrierId": uuid.uuid4().hex}
        return web.json_response({"success": True, "result": {"outTrackId": track, "deliverResults": [result]}})

    async def _update(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        card = self.cards.get(str(body.get("outTrackId") or ""))
        if card is None:
            return _refusal("card instance not exist")
        params = _params(body)
        if params is None:
            return _refusal("cardData.cardParamMap is invalid")
        options = body.get("cardUpdateOptions") or {}
        by_key = isinstance(options, dict) and options.get("updateCardDataByKey") is True
        card.params = {**card.params, **params} if by_key else params  # without it, the map is replaced
        card.updates.append(params)
        await self.emulator._notify()
        return web.json_response({"success": True, "result": True})

    async def _body(self, request: web.Request) -> dict[str, Any] | web.Response:
        if request.headers.get("x-acs-dingtalk-access-token", "") not in self.emulator._tokens:
            return web.json_response(
                {"code": "InvalidAuthentication", "message": "不合法的access_token", "requestid": uuid.uuid4().hex},
                status=401,
            )
        try:
            body = await request.json()
        except ValueError:
            body = None
        return body if isinstance(body, dict) else _refusal("body is not an object")

    def _robot_code(self) -> str:
        from bot.sandbox.emulator import ROBOT_CODE

        return ROBOT_CODE

    # --- a press

    def press_frame(self, track: str, user_id: str, action: str, reason: str = "") -> dict[str, Any]:
        """The Stream callback frame of a button press on this card, as DingTalk sends it (the
        fields dingtalk_stream's CardCallbackMessage reads; content is a JSON string)."""
        card = self.cards[track]
        if action not in {b["action"] for b in card.buttons()}:
            raise ValueError(f"the card shows no {action} button")
        from bot.sandbox.emulator import CORP_ID

        params = {"action": action, **({"reason": reason} if reason else {})}
        data = {
            "outTrackId": track,
            "userId": user_id,
            "corpId": CORP_ID,
            "type": "actionCallback",
            "spaceType": card.space_type,
            "spaceId": card.space_id,
            "userIdType": 1,
            "content": json.dumps({"cardPrivateData": {"actionIds": [action], "params": params}}, ensure_ascii=False),
            "extension": "{}",
        }
        return callback_frame(TOPIC, f"card-{uuid.uuid4().hex[:16]}", data)

    async def press(self, track: str, user_id: str, action: str, reason: str = "") -> dict[str, Any]:
        """Press a button: its callback pushed to the bot; the frame (to deliver it again)."""
        frame = self.press_frame(track, user_id, action, reason)
        await self.push(frame)
        return frame

    async def push(self, frame: dict[str, Any]) -> None:
        if TOPIC not in self.emulator.topics:
            raise RuntimeError("no client subscribed to the card callback topic")
        await self.emulator._dispatch(frame)


def _params(body: dict[str, Any]) -> dict[str, str] | None:
    data = body.get("cardData")
    params = data.get("cardParamMap") if isinstance(data, dict) else None
    if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
        return None
    return dict(params)


def _refusal(message: str) -> web.Response:
    return refusal(PARAM, message)


def serve_cards(app: web.Application, emulator: Emulator) -> Cards:
    cards = Cards(emulator)
    cards.routes(app)
    return cards
