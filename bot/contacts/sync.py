"""`org diff` and `org sync`: read the whole contact list, then say (diff) or apply (sync) what
changes. The sync applies everything in one transaction, recorded as one ContactEvent."""

from __future__ import annotations

import uuid

import aiohttp
from sqlalchemy import Engine
from sqlmodel import Session

from bot.config import Settings
from bot.contacts.api import ContactApi, ContactError, Snapshot
from bot.contacts.apply import apply
from bot.contacts.plan import Change, plan
from bot.org import Org
from bot.transport.dingtalk_api import Credentials, DingTalkApi, SendError
from models.clock import Clock, SystemClock
from models.db import unit_of_work


async def fetch(settings: Settings) -> Snapshot:
    """The contact list, with the app's access token (DINGTALK_CLIENT_ID / _SECRET)."""
    if not (settings.client_id and settings.client_secret):
        raise ContactError("需要 DINGTALK_CLIENT_ID 和 DINGTALK_CLIENT_SECRET")
    credentials = Credentials(settings.client_id, settings.client_secret, settings.robot_code or "")
    async with aiohttp.ClientSession() as http:
        tokens = DingTalkApi(http, settings.openapi_endpoint, credentials)
        try:
            snap = await ContactApi(http, settings.oapi_endpoint, tokens.access_token).snapshot()
        except SendError as e:  # the access token itself was refused
            raise ContactError(f"access token: {e}") from e
    if not snap.users:
        # An app without contact permission sees nobody: that must not read as "everyone left".
        raise ContactError("钉钉通讯录里没有任何人(应用可能没有通讯录读权限),未做任何改动")
    return snap


def diff(engine: Engine, org: Org, snap: Snapshot) -> list[Change]:
    with Session(engine) as session:
        return plan(session, org, snap)


def sync(engine: Engine, org: Org, snap: Snapshot, clock: Clock | None = None) -> list[Change]:
    with unit_of_work(engine) as session:
        changes = plan(session, org, snap)
        apply(session, changes, f"sync:{uuid.uuid4().hex}", "org_sync", (clock or SystemClock()).now())
        return changes
