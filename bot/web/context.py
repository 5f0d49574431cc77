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

from bot.photos_store import PhotoStore
from bot.web.auth import Tokens
from models.clock import Clock, local
from models.db import Access, make_engine, unit_of_work
from models.directory import Directory, UnitInfo

T = TypeVar("T")


@dataclass
class WebContext:
    engine: Engine
    directory: Directory
    clock: Clock
    tokens: Tokens
    writer: Engine  # the bot's own engine: the web writes its sign-ins and nothing else

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

    async def write(self, fn: Callable[[Session], T]) -> T:
        """One unit of work on the writer, in a worker thread (as for reads)."""

        def run() -> T:
            with unit_of_work(self.writer) as session:
                return fn(session)

        return await asyncio.to_thread(run)


def reader(engine: Engine) -> Engine:
    """An engine for the web's reads. The bot's SQLite engine opens every transaction with
    BEGIN IMMEDIATE (its read-then-write units of work need the lock from the start), so a
    dashboard read through it would hold the write lock and stall the bot's replies for as long
    as a 100,000-row export takes. This one begins deferred: in WAL mode a reader sees a
    consistent snapshot and never blocks a writer. PostgreSQL readers never block writers anyway."""
    database = engine.url.database or ""
    if engine.dialect.name != "sqlite" or database in ("", ":memory:"):
        return engine  # an in-memory database exists only behind its own engine
    # Opened as every reader is (models.db Access.READ): mode=ro, so that a file deleted while
    # the bot runs is never created again, empty, by a dashboard request; query_only; BEGIN deferred.
    return make_engine(engine.url.render_as_string(hide_password=False), Access.READ)


CONTEXT = web.AppKey("liandong_web", WebContext)
PHOTOS = web.AppKey("liandong_photos", PhotoStore)  # where the kept pictures are (bot.photos_store)
UNIT_KEY = web.RequestKey("liandong_unit", UnitInfo)  # the request's unit, set by the auth middleware


def context(request: web.Request) -> WebContext:
    return request.app[CONTEXT]


def unit_of(request: web.Request) -> UnitInfo:
    return request[UNIT_KEY]
