"""The normalized inbound message. Transports build it; handlers never see a DingTalk payload."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class AtUser:
    staff_id: str | None = None
    dingtalk_id: str | None = None
    union_id: str | None = None


@dataclass(frozen=True)
class Incoming:
    msg_id: str
    conversation_id: str
    sender_staff_id: str | None
    sender_nick: str
    text: str
    create_at: datetime  # when the person sent it (aware)
    at_users: tuple[AtUser, ...] = ()
    sender_union_id: str | None = None
    sender_id: str | None = None  # the dingtalkId-style sender
    conversation_type: str = "2"  # "1" one-to-one, "2" group
    bot_user_id: str | None = None  # chatbotUserId, left out of @owner resolution
    session_webhook: str | None = None
    session_webhook_expires: datetime | None = None
    msgtype: str = "text"
    pictures: tuple[str, ...] = field(default=())  # download codes

    def to_json(self) -> dict[str, Any]:
        # What dataclasses.asdict gives (fields in order, nested dataclasses as dicts), without
        # its deep copies: every field here is immutable.
        data = {f.name: getattr(self, f.name) for f in _FIELDS}
        data["at_users"] = tuple({a.name: getattr(u, a.name) for a in _AT_FIELDS} for u in self.at_users)
        data["create_at"] = self.create_at.isoformat()
        exp = self.session_webhook_expires
        data["session_webhook_expires"] = exp.isoformat() if exp else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Incoming:
        d = dict(data)
        d["create_at"] = datetime.fromisoformat(d["create_at"])
        if d.get("session_webhook_expires"):
            d["session_webhook_expires"] = datetime.fromisoformat(d["session_webhook_expires"])
        d["at_users"] = tuple(AtUser(**a) for a in d.get("at_users") or ())
        d["pictures"] = tuple(d.get("pictures") or ())
        return cls(**d)

    def mentioned(self) -> list[AtUser]:
        """The @-mentioned people in order, without the bot itself."""
        return [
            a
            for a in self.at_users
            if not (self.bot_user_id and a.dingtalk_id == self.bot_user_id) and (a.staff_id or a.union_id)
        ]


_FIELDS = fields(Incoming)
_AT_FIELDS = fields(AtUser)
