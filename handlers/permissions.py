"""Who may do what, as small rules that a verb's row in handlers/verbs.py combines. A rule looks
at the actor (the context) and the issue the command names (None for a verb that names none);
it is checked before the handler runs, so a refusal never depends on the issue's status."""

from __future__ import annotations

from collections.abc import Callable

from handlers.context import Context
from models import queries as q
from models import rules
from models.tables import Issue
from models.vocabulary import Role

Rule = Callable[[Context, Issue | None], bool]


def lead(ctx: Context, issue: Issue | None) -> bool:
    """Leads the issue's current level in its current unit."""
    return issue is not None and rules.leads(ctx.actor, issue.level, issue.unit_id)


def staff(ctx: Context, issue: Issue | None) -> bool:
    """Works in the unit that handles the issue now."""
    return issue is not None and ctx.actor.unit_id == issue.unit_id


def owner(ctx: Context, issue: Issue | None) -> bool:
    """The 包案人 named in 交办."""
    return issue is not None and issue.owner_id == ctx.actor.id


def reporter(ctx: Context, issue: Issue | None) -> bool:
    return issue is not None and issue.reporter_id == ctx.actor.id


def revisited(ctx: Context, issue: Issue | None) -> bool:
    """Heard the 回访 of the issue's resolution: its reporter, or the reporter of a duplicate that
    was merged into it before it was resolved."""
    return issue is not None and ctx.actor.id in q.revisited(ctx.session, issue)


def lead_above(ctx: Context, issue: Issue | None) -> bool:
    """A district lead for any issue; a township lead for the issues of their township."""
    if issue is None:
        return False
    if ctx.actor.role == Role.DISTRICT_LEAD:
        return True
    return ctx.actor.role == Role.TOWNSHIP_LEAD and issue.township_id == ctx.actor.unit_id


def admin(ctx: Context, issue: Issue | None) -> bool:
    return ctx.actor.role == Role.ADMIN


def any_of(*options: Rule) -> Rule:
    def rule(ctx: Context, issue: Issue | None) -> bool:
        return any(r(ctx, issue) for r in options)

    return rule


def all_of(*required: Rule) -> Rule:
    def rule(ctx: Context, issue: Issue | None) -> bool:
        return all(r(ctx, issue) for r in required)

    return rule
