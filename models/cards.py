"""Interactive cards (互动卡片) for the one-tap steps of a case: the 回访 (满意 / 不满意), a 延期
request (同意 / 不同意), a 交办 to the 包案人 (反馈 / 办结), a 督办 (已知悉 / 办结) and a
case reaching the district (研判 / 交办, to its duty leads). A message that asks
for such a step goes out as a card when a card template is configured
(DINGTALK_CARD_TEMPLATE_ID), else as today's markdown; a press comes back as the typed command
it stands for (`command`), through the same inbox, verb table and permission rules, and the card
is then updated in place to say how it was answered (`answered`).

The outbox rows are written here, in the transaction of the message that causes them, like
every other row: kind "card" delivers a card (bot/transport/cards.py), kind "card_update"
changes one already delivered. A card's outTrackId derives from its outbox row's key, so a
create sent again after a crash names the same card."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from models import audience, outbox
from models import queries as q
from models.tables import CardInstance

KIND = "card"  # the outbox kind that creates and delivers a card
UPDATE_KIND = "card_update"  # the outbox kind that updates one in place
PRESS_PREFIX = "card:"  # the inbox msgId of a press: card:<outTrackId>:<callback id>


class Step:
    REVISIT = "revisit"  # 办结 回访: 满意 / 不满意
    EXTENSION = "extension"  # 延期 申请: 同意 / 不同意
    ASSIGNED = "assigned"  # 交办 to the 包案人: 反馈 / 办结
    SUPERVISED = "supervised"  # 督办 (催办) of the 包案人: 已知悉 / 办结
    DISTRICT = "district"  # a case reaching the district, to its duty leads: 研判 / 交办


@dataclass(frozen=True)
class Button:
    action: str  # the card's actionId and params.action
    label: str
    command: str  # the typed command it stands for: {id} the case, {reason} the card's input
    closes: bool = True  # once it went through, the card's step is done (its buttons go)


BUTTONS: dict[str, tuple[Button, ...]] = {
    Step.REVISIT: (
        Button("satisfied", "满意", "满意 #{id}"),
        Button("dissatisfied", "不满意", "不满意 #{id} {reason}"),
    ),
    Step.EXTENSION: (
        Button("approve", "同意", "同意延期 #{id}"),
        Button("reject", "不同意", "不同意延期 #{id} {reason}"),
    ),
    Step.ASSIGNED: (
        Button("feedback", "反馈", "反馈 #{id} {reason}", closes=False),  # progress: the card stays open
        Button("resolve", "办结", "办结 #{id} {reason}"),
    ),
    Step.SUPERVISED: (
        Button("acknowledge", "已知悉", "已知悉 #{id}", closes=False),  # the case is still to be worked
        Button("resolve", "办结", "办结 #{id} {reason}"),
    ),
    # One box for both: 研判's opinion, or 交办's owner by name (交办 takes a name typed without
    # @, and a deadline after it, as typed: 「交办 #12 钱七 限5天」).
    Step.DISTRICT: (
        Button("review", "研判", "研判 #{id} {reason}", closes=False),  # it is still to be 交办
        Button("assign", "交办", "交办 #{id} {reason}"),
    ),
}
# The card's input box, by step: what its text is for (no box where no button takes text).
INPUT_HINTS = {
    Step.REVISIT: "不满意的原因",
    Step.EXTENSION: "不同意的理由",
    Step.ASSIGNED: "进展或办理结果",
    Step.SUPERVISED: "办理结果",
    Step.DISTRICT: "研判意见;或交办的包案人姓名 限N天",
}


def out_track_id(key: str) -> str:
    """DingTalk's outTrackId (外部卡片实例Id) for the card an outbox row delivers: the same on every
    resend of the row, and free of the ids the key may carry."""
    return "ld-" + hashlib.sha256(key.encode()).hexdigest()[:40]


def command(step: str, action: str, issue_id: int, reason: str = "") -> str | None:
    """The typed command a press stands for; None for a button this step does not have."""
    button = next((b for b in BUTTONS.get(step, ()) if b.action == action), None)
    if button is None:
        return None
    return button.command.format(id=issue_id, reason=" ".join(reason.split())).strip()


def button_of(step: str, text: str) -> Button | None:
    """The button a press's command came from (by its verb, the first word)."""
    verb = text.split(" ", 1)[0]
    return next((b for b in BUTTONS.get(step, ()) if b.command.split(" ", 1)[0] == verb), None)


def press_id(track: str, callback_id: str) -> str:
    """The inbox msgId of a press: a callback delivered twice is stored once."""
    return f"{PRESS_PREFIX}{track}:{callback_id}"


def pressed(msg_id: str) -> str | None:
    """The outTrackId of the card a press (by its inbox msgId) came from; None for a chat message."""
    if not msg_id.startswith(PRESS_PREFIX):
        return None
    track, _, _ = msg_id[len(PRESS_PREFIX) :].partition(":")
    return track or None


def offer(
    session: Session, rows: Sequence[dict[str, Any]], issue_id: int, step: str, now: datetime
) -> list[dict[str, Any]]:
    """The rows of a message that asks for `step`, those that can be a card made cards: a group's
    (IM_GROUP) and one person's (their 1:1 chat with the bot, IM_ROBOT); a row to several people
    at once stays markdown (a card is delivered into one space)."""
    out: list[dict[str, Any]] = []
    for r in rows:
        group = r["conversation_id"] if r["kind"] in ("reply", "group") and not r["user_ids"] else None
        person = r["user_ids"][0] if len(r["user_ids"]) == 1 and r["kind"] in ("reply", "user") else None
        if group is None and person is None:
            out.append(r)
            continue
        track = out_track_id(r["key"])
        if instance(session, track) is None:
            session.add(
                CardInstance(
                    out_track_id=track,
                    outbox_key=r["key"],
                    issue_id=issue_id,
                    step=step,
                    conversation_id=group,
                    user_id=None if group else person,
                    created_at=now,
                )
            )
        # Sent in the OpenAPI's way (createAndDeliver has no session webhook): the card's own
        # atUserIds notify whom it asks to act.
        out.append({**r, "kind": KIND, "session_webhook": None, "webhook_expires_at": None})
    session.flush()
    return out


def instance(session: Session, track: str) -> CardInstance | None:
    return session.execute(select(CardInstance).where(CardInstance.out_track_id == track)).scalars().first()  # type: ignore[arg-type]


def answered(
    session: Session, track: str, command: str, answer: str, mentioned: Sequence[str], now: datetime, cause: str
) -> list[dict[str, Any]]:
    """A press went through: the card records how, and an outbox row updates it in place (in the
    card's own conversation, so that it follows the create)."""
    card = instance(session, track)
    if card is None:
        return []
    names = [p.name for p in q.people(session, list(mentioned))] if mentioned else []
    shown = audience.plain(answer.split("\n")[0], names)[:200]  # a card's text cannot @
    button = button_of(card.step, command)
    closes = button is None or button.closes
    if closes:
        card.answer = shown
    card.updated_at = now
    session.add(card)
    change = json.dumps({"outTrackId": track, "answer": shown, "closes": closes}, ensure_ascii=False)
    return [
        outbox.row(
            f"card-update:{cause}",
            UPDATE_KIND,
            title="卡片",
            text=change,
            created_at=now,
            conversation_id=card.conversation_id,
            user_ids=[card.user_id] if card.user_id else [],
        )
    ]


def params(card: CardInstance, title: str, text: str, case_url: str | None) -> dict[str, str]:
    """The card's cardParamMap (bot/data/cards/case.json names these variables): every value a
    string, as DingTalk's cardParamMap is typed (Map<String, String> in the official SDK)."""
    buttons = BUTTONS.get(card.step, ())
    data = {
        "title": title,
        "content": text,
        "issue": f"#{card.issue_id}",
        "step": card.step,
        "answered": "true" if card.answer else "false",
        "answer": card.answer or "",
        "buttons": json.dumps([{"action": b.action, "label": b.label} for b in buttons], ensure_ascii=False),
        "caseUrl": case_url or "",
        "inputHint": INPUT_HINTS.get(card.step, ""),
    }
    return data
