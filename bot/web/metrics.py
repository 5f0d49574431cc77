"""`GET /metrics` in the Prometheus text format. The counts are read from the database at
scrape time (the inbox, the outbox, the job runs and the photo downloads are the record of
everything the bots did, and their rows are never deleted), so every process reports the same
shared truth, a restart loses nothing, and the code that sends needs no counters of its own.
Beside them, what only this process knows: whether its receiver is up, its memory and CPU.

The small tables (job runs, pictures) are grouped whole or through their status index; the big
ones (inbox, outbox) are counted whole once per process and then only their new rows (Tally),
so a scrape stays cheap however long the history. One read transaction, off the event loop;
bench/metrics.py measures a scrape."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import Select, Table, bindparam, case, func, or_, select
from sqlmodel import Session

from bot.web.health import HEALTH, INBOX, JOB_RUNS, OUTBOX, Health, SharedState, aware, read_shared
from models.tables import PhotoDownload
from schedules.runs import JobRunner

PHOTOS: Table = PhotoDownload.__table__  # type: ignore[attr-defined]
SETTLE = timedelta(minutes=10)  # a row this old is in its final state or soon read again (Tally)
END = datetime(9999, 1, 1, tzinfo=UTC)  # "no upper bound" for a claim time
CAUSE_CHARS = 40  # a failure's cause label: short, so that a label never grows without bound


def cause(error: str | None) -> str:
    """A failure's cause as a label: the error's kind without its detail ("too large: 3 MB" →
    "too large"; "HTTP 400 invalidParam" stays), digits of sizes and ids never making new series."""
    text = (error or "unknown").split(":", 1)[0].strip() or "unknown"
    return re.sub(r"\s+", " ", text)[:CAUSE_CHARS]


@dataclass(frozen=True)
class Counts:
    """(labels…, count) rows, as read."""

    inbox: list[tuple[str, str | None, str | None, int]]  # status, outcome, error reason, n
    outbox: list[tuple[str, str, str | None, str | None, int]]  # status, kind, channel, error, n
    jobs: list[tuple[str, str, str | None, int]]  # job, status, error, n
    job_success: list[tuple[str, datetime | None]]  # job, last done
    photos: list[tuple[str, None, int]]  # status, -, n
    photo_errors: list[tuple[str | None, int]]  # a lost picture's error, n


Group = tuple[tuple[str | None, ...], int]  # (labels…), count


def _rows(result: Iterable[Any]) -> list[Group]:
    return [(tuple(r[:-1]), r[-1]) for r in result]


def _outbox_groups(session: Session, above: int, upto: int = 2**31 - 1) -> list[Group]:
    """Outbox rows with above < id <= upto by status, kind, channel and (failed) error: a range
    of the primary key."""
    return _rows(session.execute(_OUTBOX_RANGE, {"above": above, "upto": upto}))


def _inbox_groups(session: Session, since: datetime | None, before: datetime = END) -> list[Group]:
    """Processed messages claimed until [since, before) by outcome and (error) reason: a range
    of ix_inbox_status_claimed. since None: from the first (rows of old schemas have no claim)."""
    if since is None:
        return _rows(session.execute(_INBOX_FIRST, {"before": before}))
    return _rows(session.execute(_INBOX_RANGE, {"since": since, "before": before}))


def _groups() -> tuple[Select[Any], Select[Any], Select[Any]]:
    o, i = OUTBOX.c, INBOX.c
    o_err = case((o.status == "failed", o.last_error), else_=None)
    outbox = (
        select(o.status, o.kind, o.channel, o_err, func.count())
        .where(o.id > bindparam("above"), o.id <= bindparam("upto"))
        .group_by(o.status, o.kind, o.channel, o_err)
    )
    i_err = case((i.outcome == "error", i.reason), else_=None)
    done = select(i.outcome, i_err, func.count()).where(i.status == "done").group_by(i.outcome, i_err)
    first = done.where(or_(i.claimed_until.is_(None), i.claimed_until < bindparam("before")))
    since = done.where(i.claimed_until >= bindparam("since"), i.claimed_until < bindparam("before"))
    return outbox, first, since


# Built once (statement and cache key): a scrape runs them all.
_OUTBOX_RANGE, _INBOX_FIRST, _INBOX_RANGE = _groups()
_FIRST_PENDING = select(func.min(OUTBOX.c.id)).where(OUTBOX.c.status == "pending")
# From the newest row down the primary key to the first one older than the cutoff.
_OLD_ENOUGH = select(OUTBOX.c.id).where(OUTBOX.c.created_at < bindparam("cutoff")).order_by(OUTBOX.c.id.desc()).limit(1)


class Tally:
    """The totals of the two big tables, kept between scrapes: a row that reached its final
    state (an outbox row sent or failed, a message processed) never changes again, so the old
    ones are counted once, and each scrape reads only the rows since.

    The outbox's settled rows are those at or below the oldest pending id, and older than
    SETTLE (a row numbered earlier by a transaction that commits later is seen by then). A
    processed message's claim time (ix_inbox_status_claimed) is within a lease of its
    processing: every path that processes a message claims it first (receipt, or the sweep
    that takes up what a dead process left), so messages claimed before now - SETTLE that
    are processed are all there are. Until the first scrape, each table is read once whole."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # scrapes read on worker threads, possibly two at once
        self.outbox_upto = 0
        self.outbox: Counter[tuple[str | None, ...]] = Counter()
        self.inbox_before: datetime | None = None
        self.inbox: Counter[tuple[str | None, ...]] = Counter()

    def read(self, session: Session, now: datetime) -> tuple[list[Group], list[Group]]:
        """(outbox groups, inbox groups of processed messages), in the session's snapshot."""
        cutoff = now - SETTLE
        first_pending = session.execute(_FIRST_PENDING).scalar()
        old = session.execute(_OLD_ENOUGH, {"cutoff": cutoff}).scalar()
        upto = min(old or 0, first_pending - 1 if first_pending is not None else old or 0)
        with self._lock:
            if upto > self.outbox_upto:
                self.outbox.update(dict(_outbox_groups(session, self.outbox_upto, upto)))
                self.outbox_upto = upto
            outbox = _merge(self.outbox, _outbox_groups(session, self.outbox_upto))
            if self.inbox_before is not None and cutoff < self.inbox_before:
                # The clock went back (the sandbox's 回到现在): claims from now on would fall
                # below the settled ones; count the table whole again.
                self.inbox, self.inbox_before = Counter(), None
            if self.inbox_before is None or cutoff > self.inbox_before:
                self.inbox.update(dict(_inbox_groups(session, self.inbox_before, cutoff)))
                self.inbox_before = cutoff
            inbox = _merge(self.inbox, _inbox_groups(session, self.inbox_before))
        return outbox, inbox


def _merge(settled: Counter[tuple[str | None, ...]], tail: list[Group]) -> list[Group]:
    total = Counter(settled)
    total.update(dict(tail))
    return [(labels, n) for labels, n in total.items() if n]


def read_counts(session: Session, tally: Tally, now: datetime, pending: int) -> Counts:
    """The counts; `pending`: the messages not processed yet (the health check read them)."""
    outbox, processed = tally.read(session, now)
    inbox = [("done", outcome, reason, n) for (outcome, reason), n in processed]
    inbox.append(("pending", None, None, pending))
    return Counts(
        inbox,
        [(*labels, n) for labels, n in outbox],  # type: ignore[misc]
        [tuple(r) for r in session.execute(_JOBS)],
        [tuple(r) for r in session.execute(_JOB_SUCCESS)],
        [(status, None, n) for status, n in session.execute(_PHOTOS)],
        [(error, n) for error, n in session.execute(_PHOTOS_LOST)],
    )


def _small() -> tuple[Select[Any], ...]:
    """The job runs (a few a day: read whole) and the pictures (through their status index)."""
    j, p = JOB_RUNS.c, PHOTOS.c
    j_err = case((j.status == "failed", j.error), else_=None)
    return (
        select(j.job, j.status, j_err, func.count()).group_by(j.job, j.status, j_err),
        select(j.job, func.max(j.finished_at)).where(j.status == "done").group_by(j.job),
        select(p.status, func.count()).group_by(p.status),
        select(p.last_error, func.count()).where(p.status == "lost").group_by(p.last_error),
    )


_JOBS, _JOB_SUCCESS, _PHOTOS, _PHOTOS_LOST = _small()


@dataclass(frozen=True)
class Snapshot:
    counts: Counts
    shared: SharedState
    now: datetime
    read_s: float


def read_snapshot(session: Session, tally: Tally, runner: JobRunner, now: datetime) -> Snapshot:
    """Everything a scrape reports from the database, in the caller's one read transaction."""
    started = time.perf_counter()
    shared = read_shared(session, runner, now)
    counts = read_counts(session, tally, now, shared.inbox.pending)
    return Snapshot(counts, shared, now, time.perf_counter() - started)


def _timestamp(at: datetime | None) -> float:
    return 0.0 if at is None else aware(at).timestamp()


def families(s: Snapshot) -> Iterator[Metric]:
    """The database's part of the exposition."""
    received = CounterMetricFamily("liandong_messages_received", "Messages stored in the inbox (each msgId once)")
    processed = CounterMetricFamily(
        "liandong_messages_processed", "Messages processed, by outcome (ok, refused, error)", labels=["outcome"]
    )
    failures = CounterMetricFamily(
        "liandong_failures",
        "Failures by stage (message: a handler error; send: an outbox row given up; job; photo: lost) and cause",
        labels=["stage", "cause"],
    )
    fail: dict[tuple[str, str], int] = {}
    total = 0
    by_outcome: dict[str, int] = {}
    for status, outcome, reason, n in s.counts.inbox:
        total += n
        if status == "done":
            by_outcome[outcome or "unknown"] = by_outcome.get(outcome or "unknown", 0) + n
        if outcome == "error":
            key = ("message", cause(reason))
            fail[key] = fail.get(key, 0) + n
    received.add_metric([], total)
    for outcome, n in sorted(by_outcome.items()):
        processed.add_metric([outcome], n)

    sent = CounterMetricFamily(
        "liandong_messages_sent",
        "Outbox rows delivered to DingTalk, by kind (reply, group, user) and channel (session, openapi, robot)",
        labels=["kind", "channel"],
    )
    written = CounterMetricFamily("liandong_outbox_written", "Outbox rows written (each idempotency key once)")
    by_channel: dict[tuple[str, str], int] = {}
    rows = 0
    for status, kind, channel, error, n in s.counts.outbox:
        rows += n
        if status == "sent":
            key = (kind, channel or "unknown")
            by_channel[key] = by_channel.get(key, 0) + n
        elif status == "failed":
            key = ("send", cause(error))
            fail[key] = fail.get(key, 0) + n
    written.add_metric([], rows)
    for labels, n in sorted(by_channel.items()):
        sent.add_metric(list(labels), n)

    runs = CounterMetricFamily(
        "liandong_job_runs", "Scheduled and manual job runs recorded, by job and status", labels=["job", "status"]
    )
    by_job: dict[tuple[str, str], int] = {}
    for job, status, error, n in s.counts.jobs:
        by_job[(job, status)] = by_job.get((job, status), 0) + n
        if status == "failed":
            key = ("job", cause(error))
            fail[key] = fail.get(key, 0) + n
    for labels, n in sorted(by_job.items()):
        runs.add_metric(list(labels), n)
    success = GaugeMetricFamily(
        "liandong_job_last_success_timestamp_seconds", "When each job last finished a run", labels=["job"]
    )
    for job, at in sorted(s.counts.job_success):
        success.add_metric([job], _timestamp(at))

    photos = CounterMetricFamily("liandong_photos", "Pictures queued for download, by status", labels=["status"])
    for status, _none, n in s.counts.photos:
        photos.add_metric([status], n)
    for error, n in s.counts.photo_errors:
        key = ("photo", cause(error))
        fail[key] = fail.get(key, 0) + n
    for labels, n in sorted(fail.items()):
        failures.add_metric(list(labels), n)

    yield from (received, processed, sent, written, failures, runs, success, photos)
    yield from _backlog(s)


def _backlog(s: Snapshot) -> Iterator[Metric]:
    out, inbox, jobs = s.shared.outbox, s.shared.inbox, s.shared.jobs
    pending = GaugeMetricFamily(
        "liandong_outbox_pending",
        "Outbox rows not sent yet: due now, or waiting (a retry, a held row)",
        labels=["state"],
    )
    pending.add_metric(["due"], out.due)
    pending.add_metric(["waiting"], out.pending - out.due)
    yield pending
    yield GaugeMetricFamily(
        "liandong_outbox_oldest_due_age_seconds",
        "How long the longest-waiting due outbox row has been due (0: none)",
        value=out.oldest_due_s(s.now),
    )
    yield GaugeMetricFamily(
        "liandong_outbox_oldest_pending_age_seconds",
        "Age of the oldest unsent outbox row, retries included (0: none)",
        value=out.oldest_pending_s(s.now),
    )
    yield GaugeMetricFamily(
        "liandong_inbox_pending", "Messages acknowledged but not processed yet", value=inbox.pending
    )
    yield GaugeMetricFamily(
        "liandong_inbox_oldest_pending_age_seconds",
        "Age of the oldest message not processed yet (0: none)",
        value=inbox.oldest_pending_s(s.now),
    )
    yield GaugeMetricFamily(
        "liandong_jobs_late", "Jobs whose latest occurrence is well past and not recorded", value=len(jobs.late)
    )


class _Shared(Collector):
    """Yields the snapshot read just before this scrape (collect() itself must not block the
    event loop on the database), or, when it could not be read, only that."""

    def __init__(self) -> None:
        self.snapshot: Snapshot | str = "unread"

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "liandong_database_up",
            "1 when this scrape could read the database, else 0 (error: its type)",
            labels=["error"],
        )
        if isinstance(self.snapshot, str):
            up.add_metric([self.snapshot], 0.0)
            yield up
            return
        up.add_metric([""], 1.0)
        yield up
        yield from families(self.snapshot)
        yield GaugeMetricFamily(
            "liandong_metrics_read_seconds", "How long this scrape's database reads took", value=self.snapshot.read_s
        )


class _Local(Collector):
    """What only this process knows."""

    def __init__(self, health: Health) -> None:
        self.health = health

    def collect(self) -> Iterable[Metric]:
        probe = self.health.receiver
        if probe is None:
            return
        receiver = probe()
        up = GaugeMetricFamily(
            "liandong_receiver_up",
            "1 when this process can take messages: its stream connected, or its callback site listening",
            labels=["mode"],
        )
        up.add_metric([receiver.mode], 1.0 if receiver.up else 0.0)
        yield up


@dataclass
class Exposition:
    registry: CollectorRegistry
    shared: _Shared
    tally: Tally


def exposition(health: Health) -> Exposition:
    # A registry of the web app's own: the library's global one would mix apps in one process.
    registry = CollectorRegistry(auto_describe=False)
    shared = _Shared()
    registry.register(shared)
    registry.register(_Local(health))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return Exposition(registry, shared, Tally())


EXPOSITION = web.AppKey("liandong_metrics", Exposition)


async def get_metrics(request: web.Request) -> web.Response:
    health = request.app[HEALTH]
    out = request.app[EXPOSITION]
    now = health.clock.now()
    snapshot = await health.read(lambda session: read_snapshot(session, out.tally, health.runner, now))
    # The format the scraper asks for (OpenMetrics or the classic text, by Accept), as the library
    # negotiates it. Set and rendered with no await between: concurrent scrapes never mix snapshots.
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    out.shared.snapshot = snapshot
    return web.Response(body=encode(out.registry), headers={"Content-Type": content_type})


PATH = "/metrics"


def register(web_app: web.Application) -> None:
    """After health.register: the scrape reads through the same Health."""
    web_app[EXPOSITION] = exposition(web_app[HEALTH])
    web_app.router.add_get(PATH, get_metrics)
