"""Accept → acknowledge → process. A message is durable in the inbox before its frame is
acknowledged; processing follows from the inbox, one message per transaction, in arrival
order, on one database thread (SQLite has one writer; the thread keeps the event loop free)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from bot.dispatch import Dispatcher
from handlers.incoming import Incoming

log = logging.getLogger(__name__)
T = TypeVar("T")
BATCH = 64  # messages processed per commit when a burst queues up


class Pipeline:
    def __init__(self, dispatcher: Dispatcher, on_processed: Callable[[], None] = lambda: None) -> None:
        self.dispatcher = dispatcher
        self.on_processed = on_processed
        self.db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="liandong-db")
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self._waiting: list[tuple[Incoming, asyncio.Future[bool]]] = []
        self._flushing: asyncio.Task[None] | None = None
        self._worker: asyncio.Task[None] | None = None
        self.processed = 0

    async def run_db(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.db, fn, *args)

    async def start(self) -> None:
        for msg_id in await self.run_db(self.dispatcher.pending):
            self.queue.put_nowait(msg_id)
        self._worker = asyncio.create_task(self._work(), name="liandong-processor")

    async def accept(self, msg: Incoming) -> bool:
        """Durable once this returns; True when the message is new. Messages that arrive while
        a write is in flight are stored together in the next transaction (group commit)."""
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((msg, fut))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        return await fut

    async def _flush(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                fresh = await self.run_db(self.dispatcher.receive_many, [m for m, _ in batch])
            except Exception as e:  # not stored: the frames stay unacknowledged and come again
                for _, fut in batch:
                    fut.set_exception(e)
                continue
            for (msg, fut), new in zip(batch, fresh, strict=True):
                if new:
                    self.queue.put_nowait(msg.msg_id)
                fut.set_result(new)

    async def _work(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while len(batch) < BATCH and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                await self.run_db(self.dispatcher.process_many, batch)
                self.processed += len(batch)
                self.on_processed()
            except Exception:
                # The database failed: the messages stay pending in the inbox and are taken up
                # again on the next start; keep serving the others.
                log.exception("processing %d messages failed; left pending", len(batch))
            finally:
                for _ in batch:
                    self.queue.task_done()

    async def drain(self) -> None:
        """Wait until everything accepted so far is processed."""
        if self._flushing:
            await asyncio.shield(self._flushing)
        await self.queue.join()

    async def stop(self) -> None:
        await self.drain()
        if self._worker:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        self.db.shutdown(wait=True)
