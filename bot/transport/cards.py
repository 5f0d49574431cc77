"""Interactive cards on the wire (models/cards.py decides what is a card): an outbox row of kind
"card" created and delivered into its group or its person's 1:1 chat, a "card_update" row
changing one in place, and a button press arriving on the Stream topic
`/v1.0/card/instances/callback` turned into the typed command it stands for and stored in the
inbox like any chat message (idempotent on the callback frame's messageId, which DingTalk keeps
when it delivers a frame again).

A press's payload, as the stream SDK parses it (dingtalk_stream/card_callback.py
CardCallbackMessage): outTrackId, userId (the presser's userId, as the card was created with
userIdType 1), corpId, type "actionCallback", and `content`, a JSON string whose
cardPrivateData carries the button's actionIds and params."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from dingtalk_stream import AckMessage, CallbackHandler, CallbackMessage, CardCallbackMessage
from sqlalchemy import Engine
from sqlmodel import Session

from bot.transport.dingtalk_api import DingTalkApi, SendError
from bot.transport.pipeline import Pipeline
from bot.transport.worker import RunDb
from handlers.incoming import Incoming
from models import cards
from models.clock import Clock
from models.markdown import render_markdown
from models.queries import people
from models.tables import CardInstance
from models.todos import CASE_PAGE

log = logging.getLogger(__name__)

CARD_TOPIC = "/v1.0/card/instances/callback"  # dingtalk_stream.Card_Callback_Router_Topic
CHANNEL = "card"


@dataclass(frozen=True)
class CardConfig:
    template_id: str  # DINGTALK_CARD_TEMPLATE_ID
    robot_code: str  # the robot that posts the card (DINGTALK_ROBOT_CODE)
    public_url: str | None = None  # LIANDONG_PUBLIC_URL: the card's link to the case page


# --- sending


async def send_card(
    api: DingTalkApi, run_db: RunDb, engine: Engine, config: CardConfig, key: str, title: str, text: str, at: list[str]
) -> str:
    """Create and deliver the card an outbox row stands for; the channel, for the row."""
    track = cards.out_track_id(key)
    card, names = await run_db(_card_and_names, engine, track, at)
    if card is None:
        raise SendError("card instance missing", retryable=False)
    await api.card_deliver(deliver_body(card, config, title, text, names))
    return CHANNEL


def deliver_body(
    card: CardInstance, config: CardConfig, title: str, text: str, names: dict[str, str]
) -> dict[str, Any]:
    """createAndDeliver's body (bot/transport/dingtalk_api.py cites each field)."""
    case_url = config.public_url + CASE_PAGE.format(id=card.issue_id) if config.public_url else None
    body: dict[str, Any] = {
        "outTrackId": card.out_track_id,
        "cardTemplateId": config.template_id,
        "callbackType": "STREAM",
        "cardData": {"cardParamMap": cards.params(card, title, render_markdown(text), case_url)},
        "userIdType": 1,
    }
    if card.conversation_id:
        body["openSpaceId"] = f"dtv1.card//IM_GROUP.{card.conversation_id}"
        body["imGroupOpenSpaceModel"] = {"supportForward": False}
        deliver: dict[str, Any] = {"robotCode": config.robot_code}
        if names:  # a real @ of whom the card asks to act (rows only name members here: models/outbox.reach)
            deliver["atUserIds"] = names
        body["imGroupOpenDeliverModel"] = deliver
    else:
        body["openSpaceId"] = f"dtv1.card//IM_ROBOT.{card.user_id}"
        body["userId"] = card.user_id
        body["imRobotOpenSpaceModel"] = {"supportForward": False}
        body["imRobotOpenDeliverModel"] = {"spaceType": "IM_ROBOT", "robotCode": config.robot_code}
    return body


async def send_card_update(api: DingTalkApi, run_db: RunDb, engine: Engine, config: CardConfig, text: str) -> str:
    """Update a card in place: the press's answer shown, and when it closed the step, the
    buttons gone (the template hides them when `answered` is "true")."""
    change = json.loads(text)
    card, _ = await run_db(_card_and_names, engine, str(change["outTrackId"]), [])
    if card is None:
        raise SendError("card instance missing", retryable=False)
    # A step done hides the buttons (`answered`); a 反馈 only shows the latest progress.
    data = {"answer": str(change.get("answer") or "")}
    if change.get("closes", True):
        data["answered"] = "true"
    body = {
        "outTrackId": card.out_track_id,
        "cardData": {"cardParamMap": data},
        "cardUpdateOptions": {"updateCardDataByKey": True},  # only these keys change
        "userIdType": 1,
    }
    await api.card_update(body)
    return CHANNEL


def _card_and_names(engine: Engine, track: str, at: list[str]) -> tuple[CardInstance | None, dict[str, str]]:
    with Session(engine) as session:
        card = cards.instance(session, track)
        names = {p.id: p.name for p in people(session, at)} if at else {}
        if card is not None:
            session.expunge(card)
        return card, names


# --- presses


class CardCallbackHandler(CallbackHandler):
    """A button press: stored in the inbox as the command it stands for, then acknowledged
    (processing, the answer and the card's update follow from the inbox, as for a message)."""

    def __init__(self, pipeline: Pipeline, engine: Engine, clock: Clock) -> None:
        super().__init__()
        self.pipeline = pipeline
        self.engine = engine
        self.clock = clock

    async def process(self, message: CallbackMessage) -> tuple[int, Any]:
        data = message.data if isinstance(message.data, dict) else {}
        incoming = await self.pipeline.run_db(self._incoming, data, str(message.headers.message_id or ""))
        if incoming is None:
            return AckMessage.STATUS_OK, {}  # not ours to act on: answered, so it is not sent again
        await self.pipeline.accept(incoming)  # raises when it could not be stored: no ack then
        return AckMessage.STATUS_OK, {}

    def _incoming(self, data: dict[str, Any], callback_id: str) -> Incoming | None:
        press = _press(data)
        if press is None or not callback_id:
            log.warning("ignored a card callback without outTrackId, userId or action")
            return None
        track, user_id, action, reason = press
        with Session(self.engine) as session:
            card = cards.instance(session, track)
        if card is None:
            log.warning("ignored a press on an unknown card")
            return None
        text = cards.command(card.step, action, card.issue_id, reason)
        if text is None:
            log.warning("ignored a press of an unknown button on a %s card", card.step)
            return None
        group = card.conversation_id
        return Incoming(
            msg_id=cards.press_id(track, callback_id),
            conversation_id=group or f"card:{card.user_id}",
            conversation_type="2" if group else "1",
            sender_staff_id=user_id,
            sender_union_id=None,
            sender_id=None,
            sender_nick="",
            text=text,
            create_at=self.clock.now(),
        )


def _press(data: dict[str, Any]) -> tuple[str, str, str, str] | None:
    """outTrackId, userId, the button's action and the card's input text, or None; read by the
    SDK's own CardCallbackMessage (it decodes `content` and `extension`, JSON in strings). The
    button's params are what the template's 回传请求 binds: {"action": …, "reason": …}."""
    try:
        press = CardCallbackMessage.from_dict(data)
    except (TypeError, ValueError, RecursionError):
        return None
    track, user_id, content = press.card_instance_id, press.user_id, press.content
    if not isinstance(track, str) or not track or not isinstance(user_id, str) or not user_id:
        return None
    private = content.get("cardPrivateData") if isinstance(content, dict) else None
    if not isinstance(private, dict):
        return None
    params: dict[str, Any] = private["params"] if isinstance(private.get("params"), dict) else {}
    ids: list[Any] = private["actionIds"] if isinstance(private.get("actionIds"), list) else []
    action = params.get("action") or (ids[0] if ids else None)
    if not isinstance(action, str) or not action:
        return None
    reason = params.get("reason")
    return track, user_id, action, reason if isinstance(reason, str) else ""
