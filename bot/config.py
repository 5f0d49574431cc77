"""Settings from the environment (and --org on the command line)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bot.org import SAMPLE
from models.db import DEFAULT_URL


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_URL
    org_file: Path = SAMPLE
    client_id: str | None = None
    client_secret: str | None = None
    robot_code: str | None = None

    @classmethod
    def from_env(cls, org: str | None = None) -> Settings:
        env = os.environ
        return cls(
            database_url=env.get("DATABASE_URL") or DEFAULT_URL,
            org_file=Path(org or env.get("LIANDONG_ORG_FILE") or SAMPLE),
            client_id=env.get("DINGTALK_CLIENT_ID") or None,
            client_secret=env.get("DINGTALK_CLIENT_SECRET") or None,
            robot_code=env.get("DINGTALK_ROBOT_CODE") or None,
        )

    def __repr__(self) -> str:  # never print the secret
        return f"Settings(database_url={self.database_url!r}, org_file={str(self.org_file)!r})"
