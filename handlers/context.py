"""What a handler gets: the message, the actor, a session, the directory and the calendar;
and the user-facing refusal it raises."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import Session

from handlers.grammar import Command
from handlers.incoming import Incoming
from models.calendar import WorkdayCalendar
from models.clock import local
from models.directory import Directory, UnitInfo
from models.tables import Issue, Person

LEAD_TITLES = {"village": "本村(社区)干部", "township": "乡镇(街道)领导", "district": "区领导"}


class Refusal(Exception):
    """A one-line Chinese answer; the message changes nothing."""


@dataclass
class Context:
    msg: Incoming
    cmd: Command
    actor: Person
    unit: UnitInfo
    session: Session
    directory: Directory
    calendar: WorkdayCalendar

    @property
    def at(self) -> datetime:
        return self.msg.create_at

    @property
    def today(self) -> date:
        return local(self.msg.create_at).date()

    def in_scope(self, issue: Issue) -> bool:
        if self.actor.id in (issue.owner_id, issue.reporter_id):
            return True
        kind = self.unit.kind
        if kind == "district":
            return True
        column = {"township": issue.township_id, "village": issue.village_id, "department": issue.department_id}
        return column[kind] == self.unit.id

    def issue(self, number: int) -> Issue:
        issue = self.session.get(Issue, number)
        if issue is None:
            raise Refusal(f"未找到 #{number},请核对编号。")
        if not self.in_scope(issue):
            raise Refusal(f"#{number} 不在你的范围内。")
        return issue

    def one_ref(self, usage: str) -> Issue:
        if not self.cmd.refs:
            raise Refusal(f"请写明问题编号,如「{usage}」。")
        return self.issue(self.cmd.refs[0])

    def is_lead(self, issue: Issue) -> bool:
        if self.actor.unit_id != issue.unit_id:
            return False
        return (
            issue.level == "village"
            or self.actor.role == {"township": "township_lead", "district": "district_lead"}[issue.level]
        )

    def is_staff(self, issue: Issue) -> bool:
        return self.actor.unit_id == issue.unit_id

    def is_owner(self, issue: Issue) -> bool:
        return issue.owner_id == self.actor.id

    def require_lead(self, issue: Issue, verb: str) -> None:
        if not self.is_lead(issue):
            raise Refusal(f"{verb}需由{LEAD_TITLES[issue.level]}操作;你可以「查 #{issue.id}」了解进展。")

    def require_open(self, issue: Issue) -> None:
        if issue.status == "closed":
            raise Refusal(f"#{issue.id} 已作为重复件合并到 #{issue.duplicate_of}。")
        if issue.status == "resolved":
            raise Refusal(f"#{issue.id} 已办结;如需继续办理请「重办 #{issue.id} 原因」。")
