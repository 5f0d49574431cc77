"""Helpers for the schedule tests: seed cases through the real dispatcher and read back what
the jobs wrote. Jobs are driven by calling them with explicit times; nothing waits."""

from __future__ import annotations

from datetime import date, datetime, time

from sqlmodel import Session, col, select

from models.clock import SHANGHAI
from models.tables import JobRun, OutboxMessage
from schedules.runs import JobRunner
from tests.conftest import Chat


def at(d: date, hh: int = 10, mm: int = 0) -> datetime:
    return datetime.combine(d, time(hh, mm), tzinfo=SHANGHAI)


def district_case(chat: Chat, text: str, owner: str, when: datetime, assign: str = "") -> int:
    """A case submitted by a district lead (so at district level) and assigned to owner."""
    r = chat.say("d001", f"上报 {text}", at=when)
    assert r.outcome == "ok" and r.issue_id, r.reply
    r2 = chat.say("d001", f"交办 #{r.issue_id} {assign}", mentions=(owner,), at=when)
    assert r2.outcome == "ok", r2.reply
    return r.issue_id


def scheduled(chat: Chat, prefix: str = "sched:") -> list[OutboxMessage]:
    with Session(chat.app.engine) as s:
        rows = s.exec(select(OutboxMessage).where(col(OutboxMessage.key).startswith(prefix)).order_by(OutboxMessage.id))
        return list(rows)


def runs(chat: Chat, job: str | None = None) -> list[JobRun]:
    with Session(chat.app.engine) as s:
        q = select(JobRun).order_by(JobRun.id)
        if job:
            q = q.where(JobRun.job == job)
        return list(s.exec(q))


def runner_at(chat: Chat, when: datetime) -> JobRunner:
    chat.clock.at = when
    return chat.app.job_runner(chat.clock)


HOMESTEAD_FOR_RUNS = "花园街道上洋村村民反映宅基地审批提交8个月仍未批复"
