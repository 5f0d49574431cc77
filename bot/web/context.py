"""What every web handler needs, kept on the aiohttp application."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TypeVar

from aiohttp import web
from sqlalchemy import Engine
from sqlmodel import Session

from bot.web.auth import Tokens
from models.clock import Clock, local
from models.directory import Directory, UnitInfo

T = TypeVar("T")


@dataclass
class WebContext:
    engine: Engine
    directory: Directory
    clock: Clock
    tokens: Tokens

    def now(self) -> datetime:
        return self.clock.now()

    def today(self) -> date:
        return local(self.clock.now()).date()

    async def read(self, fn: Callable[[Session], T]) -> T:
        """Run a read in a worker thread: the bot's message pipeline shares this event loop,
        and a 100,000-row export must not hold up its replies."""

        def run() -> T:
            with Session(self.engine) as session:
                return fn(session)

        return await asyncio.to_thread(run)


CONTEXT = web.AppKey("liandong_web", WebContext)
UNIT_KEY = web.RequestKey("liandong_unit", UnitInfo)  # the request's unit, set by the auth middleware


def context(request: web.Request) -> WebContext:
    return request.app[CONTEXT]


def unit_of(request: web.Request) -> UnitInfo:
    return request[UNIT_KEY]
