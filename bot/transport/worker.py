"""A background worker over a table of due rows (the outbox sender, the photo fetcher): one
loop that runs a pass, then waits until the next row is due or someone calls wake(). The rows
are the truth; the worker keeps nothing that a restart would lose."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, bindparam, or_

log = logging.getLogger(__name__)

RunDb = Callable[..., Awaitable[Any]]
IDLE_RETRY_S = 5.0  # how soon a worker that could not read the next due time looks again


class PollingWorker(ABC):
    name = "worker"
    # Look for due rows at least this often even when nothing woke us: another process (the CLI's
    # `liandong remind --now`) may have written some. None: only the next due row or wake().
    idle_poll_s: float | None = None

    def __init__(self, run_db: RunDb) -> None:
        self.run_db = run_db
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._in_flight = 0
        self._stopping = False
        self._settled = asyncio.Condition()

    @abstractmethod
    async def _pass(self) -> tuple[int, bool]:
        """One pass: how many rows it claimed, and whether more may be due right now."""

    @abstractmethod
    def _next_due_in(self) -> float:
        """Seconds until the next row is due (run on the database thread)."""

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"liandong-{self.name}")

    async def stop(self) -> None:
        """Let the pass under way finish (one cut off mid-way would leave its rows claimed)."""
        self._stopping = True
        self._wake.set()
        if self._task:
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                claimed, more = await self.run_pass()
            except Exception:
                log.exception("%s pass failed", self.name)
                claimed, more = 0, False
            # Another pass at once when this one may have left rows due or new rows were written
            # meanwhile; else wait for the next due row or a wake-up.
            if more or (claimed and self._wake.is_set()):
                continue
            try:
                delay = await self.run_db(self._next_due_in)
            except Exception:  # the database is unwell: this loop must outlive it, and try again
                log.warning("%s: next due time not read; polling", self.name)
                delay = IDLE_RETRY_S
            if self.idle_poll_s is not None:
                delay = min(delay, self.idle_poll_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    async def run_pass(self) -> tuple[int, bool]:
        """One pass, counted, so that idle() can tell when none is under way."""
        self._in_flight += 1
        try:
            return await self._pass()
        finally:
            self._in_flight -= 1
            async with self._settled:
                self._settled.notify_all()

    async def idle(self) -> None:
        """Wait until no pass is under way and nothing is due now (for shutdown and tests)."""
        while True:
            async with self._settled:
                await self._settled.wait_for(lambda: self._in_flight == 0)
            claimed, _ = await self.run_pass()
            if not claimed:
                return


def due(table: Table) -> ColumnElement[bool]:
    """A row of a worker's table that is waiting, past its retry time and claimed by no live
    worker (`:now` bound at run time). Claim such rows `FOR UPDATE SKIP LOCKED`, so that two
    processes never take the same row."""
    c = table.c
    return and_(
        c.status == "pending",
        or_(c.next_attempt_at.is_(None), c.next_attempt_at <= bindparam("now")),
        or_(c.claimed_until.is_(None), c.claimed_until < bindparam("now")),
    )
