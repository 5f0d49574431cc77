"""DingTalk's contact events on the Stream, applied at once.

An EVENT frame carries headers eventType, eventId (unique), eventBornTime, eventCorpId and data
{timeStamp, userId: [...], optStaffId, diffInfo} for the user events, {deptId: [...]} for the
department ones (通讯录事件 pages, e.g. 加入企业后用户激活 user_active_org and the Stream push
example of user_modify_org). The SDK subscribes to them all with {type: EVENT, topic: "*"}.

- user_leave_org: everyone named loses every right before the frame is acknowledged, so their
  next message is refused.
- user_add_org / user_modify_org: that user is fetched (`topapi/v2/user/get`) and placed.
- org_dept_*: recorded; the file maps departments by id, and DingTalk only removes an empty
  department, so nobody's rights depend on them (`liandong org sync` reconciles names).

Each event applies once (its eventId is the key of its ContactEvent row) and is acknowledged
only after it is stored; a failure leaves it unacknowledged, and DingTalk delivers it again."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
from dingtalk_stream import AckMessage, EventHandler, EventMessage
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.app import App
from bot.contacts.api import ContactApi, User
from bot.contacts.apply import applied, apply
from bot.contacts.plan import Change, change_for, db_unit_ids, dept_units, place
from bot.org import Org
from bot.transport.dingtalk_api import DingTalkApi
from models.clock import Clock
from models.db import unit_of_work
from models.directory import Directory
from models.tables import Person

log = logging.getLogger(__name__)
T = TypeVar("T")

USER_EVENTS = ("user_add_org", "user_modify_org", "user_leave_org")
DEPT_EVENTS = ("org_dept_create", "org_dept_modify", "org_dept_remove")


class ContactEventHandler(EventHandler):
    def __init__(
        self,
        engine: Engine,
        org: Org,
        api: ContactApi,
        clock: Clock,
        run_db: Callable[..., Awaitable[Any]],
    ) -> None:
        super().__init__()
        self.engine, self.org, self.api, self.clock, self.run_db = engine, org, api, clock, run_db

    async def process(self, event: EventMessage) -> tuple[int, str]:
        kind, event_id = event.headers.event_type, event.headers.event_id
        if kind not in USER_EVENTS + DEPT_EVENTS or not event_id:
            return AckMessage.STATUS_OK, "ignored"  # not a contact event: nothing of ours to do
        data = event.data if isinstance(event.data, dict) else {}
        if await self.run_db(self._seen, event_id):
            return AckMessage.STATUS_OK, "OK"
        users: dict[str, User | None] = {}
        if kind in ("user_add_org", "user_modify_org"):
            for uid in _ids(data.get("userId")):
                users[uid] = await self.api.user(uid)
        elif kind == "user_leave_org":
            users = {uid: None for uid in _ids(data.get("userId"))}
        depts = {}
        for user in users.values():
            for d in user.dept_ids if user else ():
                if d not in self.org.dingtalk_depts and d not in depts and (found := await self.api.department(d)):
                    depts[d] = found
        count = await self.run_db(self._apply, event_id, kind, users, depts)
        log.info("contact event %s (%s): %d change(s)", event_id, kind, count)
        return AckMessage.STATUS_OK, "OK"

    def _seen(self, event_id: str) -> bool:
        with Session(self.engine) as session:
            return applied(session, event_id)

    def _apply(self, event_id: str, kind: str, users: dict[str, User | None], depts: dict[int, Any]) -> int:
        try:
            with unit_of_work(self.engine) as session:
                if applied(session, event_id):
                    return 0
                units = dept_units(self.org, db_unit_ids(session, self.org), Directory.load(session), depts)
                ids = list(users)
                people = {p.id: p for p in session.exec(select(Person).where(col(Person.id).in_(ids)))}
                changes: list[Change] = []
                for uid, user in users.items():
                    change = change_for(people.get(uid), user, place(user, units) if user else None)
                    if change is not None:
                        changes.append(change)
                apply(session, changes, event_id, kind, self.clock.now())
                return len(changes)
        except IntegrityError:  # the same event, stored by another process meanwhile
            return 0


def _ids(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value or [] if v]


def contact_events(
    app: App, http: aiohttp.ClientSession, api: DingTalkApi, clock: Clock, run_db: Callable[..., Awaitable[Any]]
) -> ContactEventHandler:
    """The running bot's handler: the contact API on DINGTALK_OAPI_ENDPOINT, with the bot's token."""
    contacts = ContactApi(http, app.settings.oapi_endpoint, api.access_token)
    return ContactEventHandler(app.engine, app.org, contacts, clock, run_db)
