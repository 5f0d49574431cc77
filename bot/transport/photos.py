"""The photo worker: DingTalk's download codes are temporary, so every picture is fetched as
soon as it is recorded. Claims due `photo_downloads` rows, asks DingTalk for the file's URL
(`POST /v1.0/robot/messageFiles/download`), GETs it, keeps the bytes content-addressed
(bot.photos_store) and records the sha256 on the row. Transient failures are retried with
backoff; a code DingTalk refuses (wrong or expired) is tried CODE_ATTEMPTS times, and a file
that is too large or not an image once, before the row is recorded as lost. Either end is an
event in the case's timeline (`photo_kept` with the hash, `photo_lost` with why), written in the
same transaction as the row's change. It runs beside the outbox sender and never holds up a
reply."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select, update
from sqlmodel import Session

from bot.photos_store import NotAnImage, PhotoStore, TooLarge
from bot.transport.dingtalk_api import DingTalkApi, FileTooLarge, SendError
from bot.transport.sender import backoff_s
from bot.transport.worker import PollingWorker, RunDb, due
from models.clock import Clock
from models.db import unit_of_work
from models.events import Kind
from models.lifecycle import record
from models.tables import Issue, PhotoDownload

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8  # timeouts, 5xx, a download URL that expired under way
CODE_ATTEMPTS = 3  # DingTalk refused the code: it will not become valid, but a glitch gets two more tries
CLAIM_S = 120
CLAIM_LIMIT = 20
ACTOR = "两难助手"  # the bot, as the overdue ladder names itself in the timeline (schedules/ladder.py)


@dataclass(frozen=True)
class Job:
    id: int
    code: str
    attempts: int


@dataclass(frozen=True)
class Fetched:
    row_id: int
    sha256: str | None = None
    size: int | None = None
    content_type: str | None = None
    error: str | None = None
    retryable: bool = True
    final: bool = False  # no retry can help (too large, not an image)
    reason: str = "多次下载失败"  # the timeline's line if this ends the row as lost


class PhotoFetcher(PollingWorker):
    name = "photos"

    def __init__(
        self,
        engine: Engine,
        api: DingTalkApi,
        store: PhotoStore,
        run_db: RunDb,
        clock: Clock,
        concurrency: int = 4,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(run_db)
        self.engine = engine
        self.api = api
        self.store = store
        self.clock = clock
        self.limit = asyncio.Semaphore(concurrency)
        self.rng = rng or random.Random()

    async def fetch_due(self) -> int:
        """One pass: claim what is due, fetch it, record every outcome; how many rows it claimed."""
        return (await self.run_pass())[0]

    async def _pass(self) -> tuple[int, bool]:
        jobs = await self.run_db(self._claim)
        if jobs:
            results = await asyncio.gather(*(self._guarded(j) for j in jobs))
            await self.run_db(self._record, list(results))
        return len(jobs), len(jobs) >= CLAIM_LIMIT

    async def _guarded(self, job: Job) -> Fetched:
        async with self.limit:
            return await self._fetch(job)

    async def _fetch(self, job: Job) -> Fetched:
        try:
            url = await self.api.download_url(job.code)
            data = await self.api.fetch_file(url, self.store.max_bytes)
            sha256, kind = await asyncio.to_thread(self.store.put, data)
        except (FileTooLarge, TooLarge) as e:
            return Fetched(job.id, error=f"too large: {e}"[:200], final=True, reason="文件过大")
        except NotAnImage as e:
            return Fetched(job.id, error=str(e)[:200], final=True, reason="不是图片")
        except SendError as e:
            reason = "多次下载失败" if e.retryable else "钉钉下载码无效或已过期"
            return Fetched(job.id, error=str(e)[:200], retryable=e.retryable, reason=reason)
        except Exception as e:  # a bug must not lose the row: it is retried and visible
            log.exception("fetching photo row %s failed", job.id)
            return Fetched(job.id, error=type(e).__name__)
        return Fetched(job.id, sha256=sha256, size=len(data), content_type=kind)

    # --- database side (run on the database thread) ---

    def _claim(self) -> list[Job]:
        now = self.clock.now()
        with unit_of_work(self.engine) as session:
            rows = session.execute(_DUE, {"now": now}).all()
            if not rows:
                return []
            ids = [r.id for r in rows]
            session.execute(
                update(PHOTOS).where(PHOTOS.c.id.in_(ids)).values(claimed_until=now + timedelta(seconds=CLAIM_S))
            )
            return [Job(r.id, r.code, r.attempts) for r in rows]

    def _next_due_in(self) -> float:
        with Session(self.engine) as session:
            nxt = session.execute(_NEXT_DUE).scalar()
        if nxt is None:
            return 30.0
        return max(0.05, min(30.0, (nxt - self.clock.now()).total_seconds()))

    def _record(self, results: list[Fetched]) -> None:
        now = self.clock.now()
        with unit_of_work(self.engine) as session:
            found = session.execute(
                select(PHOTOS.c.id, PHOTOS.c.attempts, PHOTOS.c.issue_id, PHOTOS.c.event_seq, PHOTOS.c.status).where(
                    PHOTOS.c.id.in_([r.row_id for r in results])
                )
            )
            rows = {row.id: row for row in found}
            for r in results:
                row = rows.get(r.row_id)
                if row is None or row.status != "pending":  # gone, or ended by another worker
                    continue
                change = self._change(r, row.attempts + 1, now)
                session.execute(update(PHOTOS).where(PHOTOS.c.id == r.row_id).values(**change))
                if change.get("status") in ("stored", "lost"):
                    self._event(session, row, r, change, now)

    def _event(self, session: Session, row: Any, r: Fetched, change: dict[str, Any], now: datetime) -> None:
        """The row's end in the case's timeline. The issue row is locked first (PostgreSQL): its
        event_count gives the new event's number, so another process's photo worker waits for
        this one. Should a message's event take the number first, the unique (issue, seq) refuses
        this transaction whole, and the rows are fetched and recorded again once their claim ends."""
        issue = session.get(Issue, row.issue_id, with_for_update=True)
        if issue is None:
            return
        data: dict[str, Any]
        if change["status"] == "stored":
            kind = Kind.PHOTO_KEPT
            data = {
                "picture_seq": row.event_seq,
                "sha256": change["sha256"],
                "bytes": change["size"],
                "content_type": change["content_type"],
            }
        else:
            kind = Kind.PHOTO_LOST
            data = {"picture_seq": row.event_seq, "attempts": change["attempts"], "reason": r.reason}
        record(session, issue, kind, actor_id=ACTOR, at=now, msg_id=f"photo:{row.id}", data=data)

    def _change(self, r: Fetched, attempts: int, now: datetime) -> dict[str, Any]:
        change: dict[str, Any] = {"attempts": attempts, "claimed_until": None}
        if r.sha256 is not None:
            change.update(
                status="stored",
                sha256=r.sha256,
                size=r.size,
                content_type=r.content_type,
                last_error=None,
                finished_at=now,
                next_attempt_at=None,
            )
            return change
        change["last_error"] = r.error
        cap = MAX_ATTEMPTS if r.retryable else CODE_ATTEMPTS
        if r.final or attempts >= cap:
            change.update(status="lost", finished_at=now, next_attempt_at=None)
            log.warning("photo row %s lost after %s attempts: %s", r.row_id, attempts, r.error)
        else:
            change["next_attempt_at"] = now + timedelta(seconds=backoff_s(attempts, self.rng))
        return change


PHOTOS = PhotoDownload.__table__  # type: ignore[attr-defined]
_DUE = (
    select(PHOTOS.c.id, PHOTOS.c.code, PHOTOS.c.attempts)
    .where(due(PHOTOS))
    .order_by(PHOTOS.c.id)
    .limit(CLAIM_LIMIT)
    .with_for_update(skip_locked=True)  # the claim's transaction holds them: another process skips them
)
_NEXT_DUE = (
    select(PHOTOS.c.next_attempt_at)
    .where(PHOTOS.c.status == "pending", PHOTOS.c.next_attempt_at.is_not(None))
    .order_by(PHOTOS.c.next_attempt_at)
    .limit(1)
)
