"""Settings from the environment (and --org on the command line). This is the one place that
reads the environment: everything else is handed the values it needs."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bot.org import SAMPLE
from handlers.intake.categories import ENV_FILE as CATEGORY_FILE_ENV
from models.db import DEFAULT_URL

DEFAULT_ENDPOINT = "https://api.dingtalk.com"
# The older server API (topapi: contacts) lives on its own host; the emulator stands in for both.
DEFAULT_OAPI_ENDPOINT = "https://oapi.dingtalk.com"
DEFAULT_PHOTOS_DIR = Path("./data/photos")


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_URL
    org_file: Path = SAMPLE
    client_id: str | None = None
    client_secret: str | None = None
    robot_code: str | None = None
    openapi_endpoint: str = DEFAULT_ENDPOINT  # DINGTALK_OPENAPI_ENDPOINT
    oapi_endpoint: str = DEFAULT_OAPI_ENDPOINT  # DINGTALK_OAPI_ENDPOINT: the contact API (bot.contacts)
    category_file: Path | None = None  # LIANDONG_CATEGORY_FILE; None: the categories shipped with the bot
    photos_dir: Path = DEFAULT_PHOTOS_DIR  # LIANDONG_PHOTOS_DIR: pictures kept on receipt (bot.photos_store)
    # LIANDONG_PUBLIC_URL: the dashboard's address as people reach it (https://…, no trailing /);
    # links in messages point there. None: no link is shown.
    public_url: str | None = None
    # DINGTALK_CORP_ID: the organisation's CorpId, which DingTalk's requestAuthCode JSAPI needs
    # for the dashboard's login inside DingTalk (bot.web.login). None: tokens only.
    corp_id: str | None = None
    # DINGTALK_AGENT_ID: the app's AgentId, which work notifications (工作通知, asyncsend_v2) need.
    # None: that channel is not used and its messages go one to one with the bot instead.
    agent_id: str | None = None
    # LIANDONG_DING_OVERDUE=1: a DING to the owner of a case overdue 5 working days (DingTalk
    # sells DING with its paid editions only, so it is off unless asked for).
    ding_overdue: bool = False
    # DINGTALK_CARD_TEMPLATE_ID: the interactive card template (bot/data/cards/case.json, imported in
    # DingTalk's card builder); the one-tap steps go out as cards. None: markdown, as before.
    card_template_id: str | None = None
    # The custom robots' signing secrets: environment variable name -> value (see with_robot_secrets).
    robot_secrets: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, org: str | None = None, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            database_url=env.get("DATABASE_URL") or DEFAULT_URL,
            org_file=Path(org or env.get("LIANDONG_ORG_FILE") or SAMPLE),
            client_id=env.get("DINGTALK_CLIENT_ID") or None,
            client_secret=env.get("DINGTALK_CLIENT_SECRET") or None,
            # An internal app's robot code is its AppKey (the ClientID): the default when unset.
            robot_code=env.get("DINGTALK_ROBOT_CODE") or env.get("DINGTALK_CLIENT_ID") or None,
            openapi_endpoint=env.get("DINGTALK_OPENAPI_ENDPOINT") or DEFAULT_ENDPOINT,
            oapi_endpoint=env.get("DINGTALK_OAPI_ENDPOINT") or DEFAULT_OAPI_ENDPOINT,
            category_file=Path(env[CATEGORY_FILE_ENV]) if env.get(CATEGORY_FILE_ENV) else None,
            photos_dir=Path(env.get("LIANDONG_PHOTOS_DIR") or DEFAULT_PHOTOS_DIR),
            public_url=(env.get("LIANDONG_PUBLIC_URL") or "").rstrip("/") or None,
            corp_id=env.get("DINGTALK_CORP_ID") or None,
            agent_id=(env.get("DINGTALK_AGENT_ID") or "").strip() or None,
            ding_overdue=(env.get("LIANDONG_DING_OVERDUE") or "").strip().lower() in ("1", "true", "yes", "on"),
            card_template_id=env.get("DINGTALK_CARD_TEMPLATE_ID") or None,
        )

    def with_robot_secrets(self, names: Iterable[str], environ: Mapping[str, str] | None = None) -> Settings:
        """These settings with the secrets the org file's custom robots name (`secret_env`), read
        from the environment once, when the app is built; a name already given keeps its value."""
        env = os.environ if environ is None else environ
        missing = [name for name in names if name not in self.robot_secrets]
        if not missing:
            return self
        found = {name: env.get(name, "") for name in missing}
        return dataclasses.replace(self, robot_secrets={**self.robot_secrets, **found})

    def __repr__(self) -> str:  # never print a secret
        return f"Settings(database_url={self.database_url!r}, org_file={str(self.org_file)!r})"
