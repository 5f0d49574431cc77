"""Photos as evidence: a picture message attaches to the issue its sender submitted or gave
feedback on within the last 10 minutes; pictures inside the 上报/反馈 message itself attach
to that issue. Only DingTalk's download codes are kept (in a `picture` event); the image URL
is fetched from a code when the picture is shown, since DingTalk's URLs expire."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col, select

from handlers import replies as r
from handlers.context import Context, Refusal
from handlers.replies import Reply, Result
from models.lifecycle import record
from models.tables import Issue, IssueEvent

WINDOW = timedelta(minutes=10)


def _record(ctx: Context, issue: Issue, after_seq: int) -> None:
    data = {"codes": list(ctx.msg.pictures), "after_seq": after_seq}
    record(ctx.session, issue, "picture", actor_id=ctx.actor.id, at=ctx.at, msg_id=ctx.msg.msg_id, data=data)


def attach(ctx: Context) -> Result:
    """A message of pictures alone."""
    if not ctx.msg.pictures:
        raise Refusal(r.NO_PICTURE)
    post = ctx.session.exec(
        select(IssueEvent)
        .where(
            IssueEvent.actor_id == ctx.actor.id,
            col(IssueEvent.kind).in_(("created", "feedback")),
            col(IssueEvent.at) >= ctx.at - WINDOW,
            col(IssueEvent.at) <= ctx.at,
        )
        .order_by(col(IssueEvent.at).desc(), col(IssueEvent.id).desc())
    ).first()
    issue = ctx.session.get(Issue, post.issue_id) if post else None
    if post is None or issue is None:
        raise Refusal(r.PICTURE_TOO_LATE)
    _record(ctx, issue, post.seq)
    return Result(Reply(r.pictures_attached(issue, len(ctx.msg.pictures))), issue_id=issue.id)


def attach_inline(ctx: Context, issue: Issue) -> None:
    """Pictures sent in the same (richText) message as the 上报 or 反馈 just recorded."""
    if ctx.msg.pictures:
        _record(ctx, issue, issue.event_count)
