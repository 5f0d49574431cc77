"""The one trampoline every job goes through: it claims the occurrence, runs the job on a read
session, writes its messages in short transactions and then the record of the run, logs it, and reports an
error as message errors are reported (logging.exception, then an outcome row with the
exception type). Catch-up after a restart is decided here too, from the recorded runs."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session, col, func, select

from models.calendar import WorkdayCalendar
from models.clock import Clock, local
from models.db import read_session, unit_of_work
from models.directory import Directory
from models.tables import JobRun
from schedules.config import ScheduleConfig
from schedules.context import JobContext, Sent
from schedules.jobs import JOBS, JobSpec
from schedules.timing import Timing

log = logging.getLogger(__name__)

LOOKBACK = timedelta(days=14)  # how far back a restart looks for occurrences to record as missed


@dataclass(frozen=True)
class RunResult:
    job: str
    due_at: datetime | None  # None for a manual run
    status: str  # done | skipped (already run, here or by another process) | missed | failed | preview
    sent: tuple[Sent, ...] = field(default=())


class JobRunner:
    def __init__(
        self,
        engine: Engine,
        calendar: WorkdayCalendar,
        config: ScheduleConfig,
        clock: Clock,
        jobs: Sequence[JobSpec] = JOBS,
        ding: bool = False,
    ) -> None:
        self.engine = engine
        self.ding = ding  # LIANDONG_DING_OVERDUE: the ladder may DING (off by default: a paid feature)
        self.calendar = calendar
        self.config = config
        self.clock = clock
        self.jobs = tuple(jobs)
        self.runner_id = f"{socket.gethostname()}:{os.getpid()}"

    def spec(self, name: str) -> JobSpec:
        for spec in self.jobs:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def timing(self, spec: JobSpec) -> Timing:
        return Timing(self.config.times[spec.name], spec.rule, self.calendar)

    # -- one run -----------------------------------------------------------------------------

    def run(
        self,
        name: str,
        due_at: datetime | None,
        *,
        trigger: str = "schedule",
        force: bool = False,
        groups: frozenset[str] | None = None,
        dry_run: bool = False,
    ) -> RunResult:
        """Run one occurrence (due_at), or a manual run (due_at None: about now). A scheduled
        occurrence already recorded, here or by another process, is skipped."""
        spec = self.spec(name)
        for attempt in (1, 2):
            now = self.clock.now()
            try:
                return self._run_once(spec, due_at, now, trigger, force, groups, dry_run)
            except IntegrityError:
                # Another process wrote this run or one of its messages first: look again, and
                # the second time everything it wrote is found and skipped.
                if attempt == 2:
                    log.exception("job %s (%s) conflicts with another process", name, _show(due_at))
                    return RunResult(name, due_at, "skipped")
            except DBAPIError:
                log.exception("job %s (%s): database error, run not recorded", name, _show(due_at))
                return RunResult(name, due_at, "failed")
            except Exception as e:  # a bug in a job: log it, record it, go on with the others
                log.exception("job %s (%s) failed", name, _show(due_at))
                self._record(name, due_at, trigger, "failed", now, error=type(e).__name__)
                return RunResult(name, due_at, "failed")
        raise AssertionError("unreachable")

    def _run_once(
        self,
        spec: JobSpec,
        due_at: datetime | None,
        now: datetime,
        trigger: str,
        force: bool,
        groups: frozenset[str] | None,
        dry_run: bool,
    ) -> RunResult:
        # Computed on a read session (no write lock while the counts run), then written in short
        # transactions, the run's record last (schedules.context).
        with read_session(self.engine) as session:
            if due_at is not None and _recorded(session, spec.name, due_at):
                log.info("job %s (%s) already done", spec.name, _show(due_at))
                return RunResult(spec.name, due_at, "skipped")
            directory = Directory.load(session)
            ctx = JobContext(session, directory, self.calendar, due_at or now, now, force, groups, self.ding)
            spec.body(ctx)
        if dry_run:
            return RunResult(spec.name, due_at, "preview", tuple(ctx.sent))
        sent = ctx.flush(self.engine)
        with unit_of_work(self.engine) as session:
            session.add(
                JobRun(
                    job=spec.name,
                    due_at=due_at,
                    trigger=trigger,
                    status="done",
                    messages=len(sent),
                    runner=self.runner_id,
                    started_at=now,
                    finished_at=self.clock.now(),
                )
            )
        log.info("job %s (%s, %s): %d message(s)", spec.name, _show(due_at), trigger, len(sent))
        return RunResult(spec.name, due_at, "done", tuple(sent))

    def _record(
        self, name: str, due_at: datetime | None, trigger: str, status: str, now: datetime, error: str | None = None
    ) -> bool:
        try:
            with unit_of_work(self.engine) as session:
                if due_at is not None and _recorded(session, name, due_at):
                    return False
                session.add(
                    JobRun(
                        job=name,
                        due_at=due_at,
                        trigger=trigger,
                        status=status,
                        error=error,
                        runner=self.runner_id,
                        started_at=now,
                        finished_at=now,
                    )
                )
        except IntegrityError:
            return False
        except DBAPIError:
            log.exception("job %s (%s): could not record %s", name, _show(due_at), status)
            return False
        return True

    # -- catch-up ------------------------------------------------------------------------------

    def catch_up(self) -> list[RunResult]:
        """Every job, as of now: see catch_up_job."""
        return [r for spec in self.jobs for r in self.catch_up_job(spec.name, trigger="catch_up")]

    def catch_up_job(self, name: str, *, trigger: str = "schedule") -> list[RunResult]:
        """Do the job's latest occurrence if it is not recorded and is within the grace time; record
        the unrecorded ones since the last recorded occurrence (at most LOOKBACK) as missed.
        APScheduler's timer calls this too, so a timer, a restart and a second process all decide
        the same way, and the database says what has been done."""
        spec = self.spec(name)
        timing = self.timing(spec)
        now = self.clock.now()
        latest = timing.latest_at_or_before(now)
        if latest is None:
            return []
        with Session(self.engine) as session:
            last = session.exec(
                select(func.max(JobRun.due_at)).where(JobRun.job == name, col(JobRun.due_at).is_not(None))
            ).one()
            # Never ran here: only the latest occurrence matters, not weeks before the install.
            pending = [latest] if last is None else timing.between(max(last, now - LOOKBACK), now)
            done = {
                r
                for r in session.exec(
                    select(JobRun.due_at).where(JobRun.job == name, col(JobRun.due_at).in_(pending))
                ).all()
            }
        results: list[RunResult] = []
        for due_at in pending:
            if due_at in done:
                continue
            if due_at == latest and now - due_at <= self.config.grace:
                results.append(self.run(name, due_at, trigger=trigger if now - due_at > _LATE else "schedule"))
            elif self._record(name, due_at, trigger, "missed", now):
                log.warning("job %s (%s) missed: later than the grace time", name, _show(due_at))
                results.append(RunResult(name, due_at, "missed"))
        return results

    # -- reading -------------------------------------------------------------------------------

    def next_runs(self, after: datetime) -> list[tuple[JobSpec, datetime | None]]:
        """Each job with its next occurrence at or after the given moment."""
        return [(spec, self.timing(spec).next_at_or_after(after)) for spec in self.jobs]


_LATE = timedelta(minutes=1)  # a timer this late is still "schedule"; later it was a catch-up


def _recorded(session: Session, name: str, due_at: datetime) -> bool:
    q = select(JobRun.id).where(JobRun.job == name, JobRun.due_at == due_at)
    return session.exec(q).first() is not None


def _show(due_at: datetime | None) -> str:
    return local(due_at).isoformat() if due_at else "manual"
