"""Accept → acknowledge → process. A message is durable in the inbox before its frame is
acknowledged; processing follows from the inbox, one message per transaction, in arrival
order, on one database thread (SQLite has one writer; the thread keeps the event loop free).
A message that only reads (统计, 列表, 查) is computed on a reader thread, on a read session,
and only its short final write goes back to the database thread: a long report never delays
the storing (and so the acknowledgement) or the processing of the messages behind it.

Several processes share one database: each processes what it stored (it holds a claim on it
for `Dispatcher.lease`), and a sweep every `sweep_s` takes up the messages whose claim expired
(a process that died between the acknowledgement and processing), at start and while running.

The database failing (locked past its busy timeout, read-only, unreachable) never strands a
message: a frame not stored is not acknowledged (DingTalk delivers it again), and a message
stored but not processed is retried by this process, which still holds its claim, with backoff
until the database takes writes again; the state change is logged once (`DatabaseState`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from bot.dispatch import Dispatcher, Outcome
from bot.transport.db_state import DatabaseState
from handlers.incoming import Incoming

log = logging.getLogger(__name__)
T = TypeVar("T")
BATCH = 64  # messages processed per commit when a burst queues up
SWEEP_S = 30.0  # how often the inbox is swept for messages whose holder let the claim expire
READERS = 2  # reports computed at once (the machine's cores; the writes never wait for them)
RETRY_FIRST_S = 0.5  # a message the database failed is tried again this soon, then twice as late …
RETRY_CAP_S = 5.0  # … up to this


class Pipeline:
    def __init__(
        self, dispatcher: Dispatcher, on_processed: Callable[[], None] = lambda: None, sweep_s: float = SWEEP_S
    ) -> None:
        self.dispatcher = dispatcher
        self.sweep_s = sweep_s
        self._sweeper: asyncio.Task[None] | None = None
        self.on_processed = on_processed
        self.db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="liandong-db")
        self.readers = ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="liandong-read")
        self._reading: dict[str, asyncio.Task[None]] = {}  # msgId → its read-only answer under way
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self._waiting: list[tuple[Incoming, asyncio.Future[bool]]] = []
        self._flushing: asyncio.Task[None] | None = None
        self._worker: asyncio.Task[None] | None = None
        self.processed = 0
        self.database = DatabaseState()
        self._stalled: list[str] = []  # msgIds this process holds whose processing the database failed
        self._retry_in = RETRY_FIRST_S
        self._stall_signal = asyncio.Event()  # set when a message stalls: its backoff starts now

    async def run_db(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.db, fn, *args)

    async def start(self) -> None:
        await self.sweep()
        self._worker = asyncio.create_task(self._work(), name="liandong-processor")
        self._sweeper = asyncio.create_task(self._sweep_loop(), name="liandong-inbox-sweep")

    async def sweep(self) -> int:
        """Queue the stored messages nobody holds any more; how many."""
        try:
            taken = await self.run_db(self.dispatcher.claim_stale)
        except Exception as e:
            if not self.database.failed(e):
                raise
            return 0  # said once by the state change; the next sweep tries again
        self.database.succeeded()
        for msg_id in taken:
            self.queue.put_nowait(msg_id)
        if taken:
            log.info("inbox sweep: took up %d messages left unprocessed", len(taken))
        return len(taken)

    async def _sweep_loop(self) -> None:
        while True:
            if not self._stalled:  # until the sweep's period is up, or a message stalls
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stall_signal.wait(), timeout=self.sweep_s)
            self._stall_signal.clear()
            if self._stalled:
                await asyncio.sleep(self._retry_in)  # the backoff before they are tried again
                stalled, self._stalled = self._stalled, []
                self._retry_in = min(RETRY_CAP_S, self._retry_in * 2)
                for msg_id in stalled:
                    self.queue.put_nowait(msg_id)
            try:
                await self.sweep()
            except Exception:
                log.exception("inbox sweep failed")

    def _stall(self, msg_ids: list[str], e: BaseException) -> bool:
        """The database failed these messages' processing for an outage: keep them to be tried
        again after the backoff (True); False when it was another error."""
        if not self.database.failed(e):
            return False
        self._stalled.extend(msg_ids)
        self._stall_signal.set()
        return True

    def _recovered(self) -> None:
        self.database.succeeded()
        self._retry_in = RETRY_FIRST_S

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
                if not self.database.failed(e):
                    log.exception("storing %d messages failed; not acknowledged", len(batch))
                for _, fut in batch:
                    fut.set_exception(e)
                continue
            self._recovered()
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
                outcomes = await self.run_db(self.dispatcher.process_writes, batch)
                deferred = [m for m, o in zip(batch, outcomes, strict=True) if o.outcome == "deferred"]
                for msg_id in deferred:
                    self._read(msg_id)
                self.processed += len(batch) - len(deferred)
                self._recovered()
                self.on_processed()
            except Exception as e:
                # The messages stay pending in the inbox: after an outage this process tries them
                # again; after anything else a sweep takes them up once their claim expires.
                if not self._stall(batch, e):
                    log.exception("processing %d messages failed; left pending", len(batch))
            finally:
                for _ in batch:
                    self.queue.task_done()

    def _read(self, msg_id: str) -> None:
        if msg_id in self._reading:  # taken up again by a sweep while still being computed
            return
        task = asyncio.create_task(self._answer(msg_id), name=f"liandong-read-{msg_id}")
        self._reading[msg_id] = task
        task.add_done_callback(lambda _t: self._reading.pop(msg_id, None))

    async def _answer(self, msg_id: str) -> None:
        try:
            prepared = await asyncio.get_running_loop().run_in_executor(self.readers, self.dispatcher.prepare, msg_id)
            if not isinstance(prepared, Outcome):
                await self.run_db(self.dispatcher.finish, prepared)
            self.processed += 1
            self._recovered()
            self.on_processed()
        except Exception as e:  # left pending: tried again (an outage) or swept once its claim expires
            if not self._stall([msg_id], e):
                log.exception("answering %s failed; left pending", msg_id)

    async def drain(self) -> None:
        """Wait until everything accepted so far is processed (the reports included)."""
        if self._flushing:
            await asyncio.shield(self._flushing)
        await self.queue.join()
        while self._reading:
            await asyncio.gather(*self._reading.values(), return_exceptions=True)
            await self.queue.join()

    async def stop(self) -> None:
        if self._sweeper:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        await self.drain()
        if self._worker:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        self.readers.shutdown(wait=True)
        self.db.shutdown(wait=True)
