"""`GET /healthz`: is this process fit to serve? Its own receiver (the stream connection, or
the HTTP callback site listening), and the shared database's state: reachable, the inbox and
outbox not stuck, the scheduled jobs being run by some process. 200 when all hold, 503 naming
what fails. No token: it says nothing about cases, people or secrets (a database error is
reported by its type alone, never by its text, which may carry the connection URL)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from aiohttp import web
from sqlalchemy import Engine, Table, bindparam, func, select
from sqlmodel import Session

from bot.transport.db_state import DatabaseState
from bot.transport.worker import due
from models.clock import Clock
from models.tables import InboxMessage, JobRun, OutboxMessage
from schedules.runs import JobRunner

T = TypeVar("T")
INBOX: Table = InboxMessage.__table__  # type: ignore[attr-defined]
OUTBOX: Table = OutboxMessage.__table__  # type: ignore[attr-defined]
JOB_RUNS: Table = JobRun.__table__  # type: ignore[attr-defined]

# A reply normally leaves within seconds; one due for this long means no process is sending
# (or DingTalk refuses everything). The same for a message stored but not processed.
STALE = timedelta(minutes=5)
# The leader runs an occurrence at its time (catch-up after a restart within seconds, leader
# failover within 30 s): one unrecorded this long after its time means no process runs the jobs.
JOB_LATE = timedelta(minutes=10)
DB_TIMEOUT_S = 5.0  # an unreachable PostgreSQL can hang a connect: the check answers anyway


@dataclass(frozen=True)
class Receiver:
    """How this process takes DingTalk's messages, and whether it can right now."""

    mode: str  # stream | http_callback
    up: bool  # stream: a connection is open; http_callback: the site is listening


ReceiverProbe = Callable[[], Receiver]
# This process's own writes (bot.transport.db_state): a reader's check can pass while every
# write fails (a file deleted under a running bot is still read through its open connections,
# a lock lets readers through), so the writer's state is a check of its own.
WritesProbe = Callable[[], DatabaseState | None]


@dataclass(frozen=True)
class Backlog:
    pending: int  # rows waiting (due now, or retrying later, or held by a process)
    due: int  # of them, due now and held by no process
    oldest_due_at: datetime | None  # since when the longest-waiting due row has been due
    oldest_pending_at: datetime | None  # the creation (receipt) time of the oldest pending row

    def oldest_due_s(self, now: datetime) -> float:
        return _age_s(self.oldest_due_at, now)

    def oldest_pending_s(self, now: datetime) -> float:
        return _age_s(self.oldest_pending_at, now)


def aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)  # a naive time read back is UTC, as models.clock.local takes it


def _age_s(at: datetime | None, now: datetime) -> float:
    return 0.0 if at is None else max(0.0, (now - aware(at)).total_seconds())


def outbox_backlog(session: Session, now: datetime) -> Backlog:
    """Two aggregates over the pending rows only (found through the status index); "due" is the
    sender's own rule (bot.transport.worker.due)."""
    total, oldest = session.execute(_OUTBOX_PENDING).one()
    count, oldest_due = session.execute(_OUTBOX_DUE, {"now": now}).one()
    return Backlog(total, count, oldest_due, oldest)


def inbox_backlog(session: Session) -> Backlog:
    """Messages stored and acknowledged but not processed yet (ix_inbox_status_claimed). Any of
    them is due: its owner processes it at once, or a sweep takes it when the owner died."""
    total, oldest = session.execute(_INBOX_PENDING).one()
    return Backlog(total, total, oldest, oldest)


@dataclass(frozen=True)
class JobState:
    last_job: str | None
    last_status: str | None
    last_at: datetime | None  # when the latest recorded run finished (or started)
    late: tuple[str, ...]  # jobs whose latest occurrence is JOB_LATE past and not recorded


def job_state(session: Session, runner: JobRunner, now: datetime) -> JobState:
    last = session.execute(_LAST_RUN).first()
    expected = {}
    for spec in runner.jobs:
        due_at = runner.timing(spec).latest_at_or_before(now - JOB_LATE)
        if due_at is not None:
            expected[spec.name] = due_at
    late: tuple[str, ...] = ()
    if expected:
        # uq_job_run_due (job, due_at): probes of its index, in one statement.
        found = session.execute(_RUNS_OF, {"jobs": list(expected), "due": list(expected.values())})
        recorded = {(job, aware(at)) for job, at in found}
        late = tuple(job for job, at in expected.items() if (job, aware(at)) not in recorded)
    if last is None:
        return JobState(None, None, None, late)
    return JobState(last.job, last.status, last.at, late)


# Built once (statement and cache key), like the sender's: a scrape runs them all.
_OUTBOX_PENDING = select(func.count(), func.min(OUTBOX.c.created_at)).where(OUTBOX.c.status == "pending")
_OUTBOX_DUE = select(func.count(), func.min(func.coalesce(OUTBOX.c.next_attempt_at, OUTBOX.c.created_at))).where(
    due(OUTBOX)
)
_INBOX_PENDING = select(func.count(), func.min(INBOX.c.received_at)).where(INBOX.c.status == "pending")
# The newest row is the one recorded last (ids only grow): one step down the primary key.
_LAST_RUN = (
    select(JOB_RUNS.c.job, JOB_RUNS.c.status, func.coalesce(JOB_RUNS.c.finished_at, JOB_RUNS.c.started_at).label("at"))
    .order_by(JOB_RUNS.c.id.desc())
    .limit(1)
)
_RUNS_OF = select(JOB_RUNS.c.job, JOB_RUNS.c.due_at).where(
    JOB_RUNS.c.job.in_(bindparam("jobs", expanding=True)), JOB_RUNS.c.due_at.in_(bindparam("due", expanding=True))
)


@dataclass(frozen=True)
class SharedState:
    outbox: Backlog
    inbox: Backlog
    jobs: JobState
    read_ms: float


def read_shared(session: Session, runner: JobRunner, now: datetime) -> SharedState:
    """What every process sees alike."""
    started = time.perf_counter()
    outbox = outbox_backlog(session, now)
    inbox = inbox_backlog(session)
    jobs = job_state(session, runner, now)
    return SharedState(outbox, inbox, jobs, (time.perf_counter() - started) * 1000)


def _iso(at: datetime | None) -> str | None:
    return None if at is None else aware(at).isoformat()


def report(
    receiver: Receiver | None, shared: SharedState | str, now: datetime, writes: DatabaseState | None = None
) -> tuple[int, dict[str, Any]]:
    """The status code and body. `shared` is the database's state, or the type of the error
    that kept it from being read; `writes`, this process's writes as it last found them."""
    checks: dict[str, dict[str, Any]] = {}
    if receiver is not None:  # None: no receiver in this process (the sandbox serves its own)
        checks["receiver"] = {"ok": receiver.up, "mode": receiver.mode, "up": receiver.up}
    if writes is not None:
        checks["writes"] = {"ok": writes.ok, "state": writes.state}
        if not writes.ok:  # since when: the state's age on this process's clock
            held_s = writes.for_s()
            checks["writes"] |= {"since": _iso(now - timedelta(seconds=held_s)), "for_s": round(held_s, 1)}
    if isinstance(shared, str):
        checks["database"] = {"ok": False, "error": shared}
    else:
        checks["database"] = {"ok": True, "ms": round(shared.read_ms, 1)}
        for name, backlog in (("outbox", shared.outbox), ("inbox", shared.inbox)):
            waited = backlog.oldest_due_s(now)
            checks[name] = {
                "ok": waited <= STALE.total_seconds(),
                "pending": backlog.pending,
                "due": backlog.due,
                "oldest_due_s": round(waited, 1),
            }
        jobs = shared.jobs
        checks["jobs"] = {
            "ok": not jobs.late,
            "late": list(jobs.late),
            "last_run": None
            if jobs.last_job is None
            else {"job": jobs.last_job, "status": jobs.last_status, "at": _iso(jobs.last_at)},
        }
    failing = [name for name, check in checks.items() if not check["ok"]]
    body = {"status": "fail" if failing else "ok", "failing": failing, "checks": checks}
    return (503 if failing else 200), body


@dataclass
class Health:
    engine: Engine
    runner: JobRunner
    clock: Clock
    receiver: ReceiverProbe | None
    writes: WritesProbe | None = None

    async def read(self, fn: Callable[[Session], T]) -> T | str:
        """fn in one read transaction off the event loop; or, when the database could not be
        read, the error's type ("timeout" when it did not answer in time)."""

        def run() -> T:
            with Session(self.engine) as session:
                return fn(session)

        try:
            return await asyncio.wait_for(asyncio.to_thread(run), timeout=DB_TIMEOUT_S)
        except TimeoutError:
            return "timeout"
        except Exception as e:  # any failure to read is the database check failing
            return type(e).__name__


HEALTH = web.AppKey("liandong_health", Health)


async def get_healthz(request: web.Request) -> web.Response:
    health = request.app[HEALTH]
    now = health.clock.now()
    shared = await health.read(lambda session: read_shared(session, health.runner, now))
    receiver = health.receiver() if health.receiver else None
    status, body = report(receiver, shared, now, health.writes() if health.writes else None)
    return web.json_response(body, status=status)


PATH = "/healthz"


def register(web_app: web.Application, health: Health) -> None:
    web_app[HEALTH] = health
    web_app.router.add_get(PATH, get_healthz)
