"""The scheduler as the running bot uses it: APScheduler 3 (AsyncIOScheduler, Asia/Shanghai)
as a timer, the leader lock, and the catch-up on becoming leader. Every run goes through
schedules.runs.JobRunner, so what has been done is read from the database, never from memory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from models.clock import SHANGHAI
from schedules.leader import LeaderLock
from schedules.runs import JobRunner, RunResult
from schedules.timing import TimingTrigger

log = logging.getLogger(__name__)

FOLLOWER_POLL_SECONDS = 10.0  # how soon a follower notices that the leader has died (failover within 30 s)


class SchedulerHandle:
    """What `start` returns. `stop()` is the clean shutdown; `catch_up()` runs whatever is due as
    of the clock's now (a sandbox that moves a fake clock calls it after each move)."""

    def __init__(
        self,
        runner: JobRunner,
        lock: LeaderLock,
        poll_seconds: float,
        on_written: Callable[[], None] | None = None,
    ) -> None:
        self.runner = runner
        self.lock = lock
        self.poll_seconds = poll_seconds
        self.on_written = on_written
        self.is_leader = False
        self._scheduler: AsyncIOScheduler | None = None
        self._follower: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Future[Any]] = set()
        self._stopped = False
        # The lock is tried on a worker thread (a database lock blocks); one try at a time, and
        # none once stop() has begun, so that stop() releases whatever was taken.
        self._guard = threading.Lock()
        self._leading = asyncio.Lock()

    def _acquire(self) -> bool:
        with self._guard:
            return not self._stopped and self.lock.acquire()

    async def _holds(self) -> bool:
        return await asyncio.get_running_loop().run_in_executor(None, self._acquire)

    async def try_lead(self) -> bool:
        """Take the leader lock if it is free; on success start the timers and catch up."""
        async with self._leading:
            return await self._try_lead()

    async def _try_lead(self) -> bool:
        if self.is_leader or self._stopped:
            return self.is_leader
        if not await self._holds() or self._stopped:
            return False  # (stopped meanwhile: stop() has released it)
        self.is_leader = True
        log.info("scheduler: this process leads (%s)", self.runner.runner_id)
        grace = int(self.runner.config.grace.total_seconds())
        self._scheduler = AsyncIOScheduler(
            timezone=SHANGHAI, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": grace}
        )
        for spec in self.runner.jobs:
            self._scheduler.add_job(
                self._fire, TimingTrigger(self.runner.timing(spec)), args=[spec.name], id=spec.name, name=spec.title
            )
        # Timers first, then the catch-up: an occurrence between the two is seen by one of them,
        # and if by both, the recorded run makes the second one skip.
        self._scheduler.start()
        await self.catch_up()
        return True

    async def catch_up(self) -> list[RunResult]:
        if not self.is_leader:
            return []
        return await self._in_thread(self.runner.catch_up)

    async def _fire(self, name: str) -> None:
        await self._in_thread(lambda: self.runner.catch_up_job(name, trigger="schedule"))

    async def _in_thread(self, fn: Callable[[], list[RunResult]]) -> list[RunResult]:
        # The jobs use the blocking database API; keep them off the event loop, and let stop()
        # wait for a run in progress rather than abandon its transaction.
        future = asyncio.get_running_loop().run_in_executor(None, fn)
        self._inflight.add(future)
        future.add_done_callback(self._inflight.discard)
        results = await asyncio.shield(future)
        if self.on_written and any(r.sent for r in results):
            self.on_written()
        return results

    def follow(self) -> None:
        """Poll for the lock in the background until this process leads; then, while leading,
        check it is still held (a database lock dies with its connection) and follow again if not."""

        async def poll() -> None:
            while True:
                while not await self.try_lead():
                    await asyncio.sleep(self.poll_seconds)
                while await self._holds():
                    await asyncio.sleep(self.poll_seconds)
                if self._stopped:
                    return
                self._step_down()

        self._follower = asyncio.create_task(poll(), name="liandong-scheduler-follower")

    def _step_down(self) -> None:
        log.warning("scheduler: leadership lost; following")
        if self._scheduler and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        self._scheduler = None
        self.is_leader = False

    async def stop(self) -> None:
        self._stopped = True
        if self._follower:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
        if self._scheduler and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        with self._guard:  # a try under way on a worker thread has finished
            self.lock.release()
        if self.is_leader:
            self.is_leader = False
            log.info("scheduler: stopped, leadership released")


async def start(
    runner: JobRunner,
    *,
    lock: LeaderLock,
    poll_seconds: float = FOLLOWER_POLL_SECONDS,
    on_written: Callable[[], None] | None = None,
) -> SchedulerHandle:
    """Start the scheduled jobs inside the running event loop; call it once per process.

        handle = await schedules.runner.start(app.job_runner(clock), lock=leader_lock(url))
        ...
        await handle.stop()                                  # before the outbox is flushed

    - If this process gets the leader lock (`leader_lock(url)`: a PostgreSQL advisory lock on a
      connection of its own, or a file beside the SQLite database) it
      first starts the APScheduler timers (Asia/Shanghai, times and grace from the org file's
      `schedule:` section), then does what a downtime missed: the latest occurrence of each job
      within the grace time is run once, older ones are recorded as missed.
    - Otherwise it polls the lock every `poll_seconds` and takes over when the leader dies; a
      leader checks as often that it still holds the lock, and steps down if it lost it.
    - Jobs only write outbox rows (the running bot's sender delivers them) and record each run in
      `job_runs`; a message key that exists is never written again, whoever runs the job.
    - `on_written` is called (in the event loop) after a run wrote messages, e.g. the outbox
      sender's wake-up, so a reminder does not wait for the sender's next poll.
    - `clock` defaults to the dispatcher's. The timers fire on real time whatever the clock; with
      a fake clock, call `await handle.catch_up()` after moving it to run what became due.
    """
    handle = SchedulerHandle(runner, lock, poll_seconds, on_written)
    if not await handle.try_lead():
        log.info("scheduler: another process leads; following")
    handle.follow()
    return handle
