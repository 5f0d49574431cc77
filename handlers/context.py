"""What a handler gets: the message, the actor, a session, the directory, the calendar and the
issues its command names; and the user-facing refusal it raises."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import Session

from handlers.grammar import Command
from handlers.incoming import Incoming
from models.calendar import WorkdayCalendar
from models.clock import local
from models.directory import Directory, UnitInfo
from models.masking import mask
from models.rules import leads, visible
from models.tables import Issue, Person
from models.vocabulary import Status

MAX_ISSUE_NUMBER = 2**31 - 1


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
    targets: tuple[Issue, ...] = ()
    duty_leads: tuple[str, ...] = ()  # the org file's duty_leads: who takes an escalation to the district

    @property
    def at(self) -> datetime:
        return self.msg.create_at

    @property
    def today(self) -> date:
        return local(self.msg.create_at).date()

    @property
    def target(self) -> Issue:
        """The issue the command names (its verb's row looked it up and checked the rule)."""
        return self.targets[0]

    def issue(self, number: int) -> Issue:
        # A number past any issue's is not looked up (the database's integers end at 2**63).
        issue = self.session.get(Issue, number) if number <= MAX_ISSUE_NUMBER else None
        if issue is None:
            raise Refusal(f"未找到 #{mask(str(number))},请核对编号。")
        if not visible(self.unit, self.actor.id, issue):
            raise Refusal(f"#{number} 不在你的范围内。")
        return issue

    def leads(self, issue: Issue) -> bool:
        return leads(self.actor, issue.level, issue.unit_id)

    def require_open(self, issue: Issue) -> None:
        if issue.status == Status.CLOSED:
            raise Refusal(f"#{issue.id} 已作为重复件合并到 #{issue.duplicate_of}。")
        if issue.status == Status.RESOLVED:
            raise Refusal(f"#{issue.id} 已办结;如需继续办理请「重办 #{issue.id} 原因」。")
