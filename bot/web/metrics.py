"""`GET /metrics` in the Prometheus text format. The counts are read from the database at
scrape time (the inbox, the outbox, the job runs and the photo downloads are the record of
everything the bots did, and their rows are never deleted), so every process reports the same
shared truth, a restart loses nothing, and the code that sends needs no counters of its own.
Beside them, what only this process knows: whether its receiver is up, its memory and CPU.

Each table is read with one GROUP BY over it (the small ones) or over its status index (the
backlog), in one read transaction, off the event loop; bench/metrics.py measures a scrape."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import Table, case, func, select
from sqlmodel import Session

from bot.web.health import HEALTH, INBOX, JOB_RUNS, OUTBOX, Health, SharedState, aware, read_shared
from models.tables import PhotoDownload
from schedules.runs import JobRunner

PHOTOS: Table = PhotoDownload.__table__  # type: ignore[attr-defined]
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
    photos: list[tuple[str, str | None, int]]  # status, error, n


def read_counts(session: Session) -> Counts:
    i, o, j, p = INBOX.c, OUTBOX.c, JOB_RUNS.c, PHOTOS.c
    # The error text is a label only where it is a failure's cause; elsewhere NULL, one group.
    i_err = case((i.outcome == "error", i.reason), else_=None)
    o_err = case((o.status == "failed", o.last_error), else_=None)
    j_err = case((j.status == "failed", j.error), else_=None)
    p_err = case((p.status == "lost", p.last_error), else_=None)
    inbox = session.execute(select(i.status, i.outcome, i_err, func.count()).group_by(i.status, i.outcome, i_err))
    outbox = session.execute(
        select(o.status, o.kind, o.channel, o_err, func.count()).group_by(o.status, o.kind, o.channel, o_err)
    )
    jobs = session.execute(select(j.job, j.status, j_err, func.count()).group_by(j.job, j.status, j_err))
    success = session.execute(select(j.job, func.max(j.finished_at)).where(j.status == "done").group_by(j.job))
    photos = session.execute(select(p.status, p_err, func.count()).group_by(p.status, p_err))
    return Counts(
        [tuple(r) for r in inbox],
        [tuple(r) for r in outbox],
        [tuple(r) for r in jobs],
        [tuple(r) for r in success],
        [tuple(r) for r in photos],
    )


@dataclass(frozen=True)
class Snapshot:
    counts: Counts
    shared: SharedState
    now: datetime
    read_s: float


def read_snapshot(session: Session, runner: JobRunner, now: datetime) -> Snapshot:
    """Everything a scrape reports from the database, in the caller's one read transaction."""
    started = time.perf_counter()
    counts = read_counts(session)
    shared = read_shared(session, runner, now)
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
    for status, error, n in s.counts.photos:
        photos.add_metric([status], n)
        if status == "lost":
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


def exposition(health: Health) -> Exposition:
    # A registry of the web app's own: the library's global one would mix apps in one process.
    registry = CollectorRegistry(auto_describe=False)
    shared = _Shared()
    registry.register(shared)
    registry.register(_Local(health))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return Exposition(registry, shared)


EXPOSITION = web.AppKey("liandong_metrics", Exposition)


async def get_metrics(request: web.Request) -> web.Response:
    health = request.app[HEALTH]
    out = request.app[EXPOSITION]
    now = health.clock.now()
    snapshot = await health.read(lambda session: read_snapshot(session, health.runner, now))
    # Set and rendered with no await between: two scrapes at once cannot mix their snapshots.
    out.shared.snapshot = snapshot
    return web.Response(body=generate_latest(out.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


PATH = "/metrics"


def register(web_app: web.Application) -> None:
    """After health.register: the scrape reads through the same Health."""
    web_app[EXPOSITION] = exposition(web_app[HEALTH])
    web_app.router.add_get(PATH, get_metrics)
