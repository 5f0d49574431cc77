"""Photos as evidence: a picture message attaches to the issue its sender submitted or gave
feedback on within the last 10 minutes; pictures inside the 上报/反馈 message itself attach
to that issue. The `picture` event names DingTalk's download codes, and in the same transaction
each code is queued for fetching (a `photo_downloads` row): the codes are temporary, so
bot.transport.photos fetches the file at once and keeps it (bot.photos_store).

In a group only a message that @s the bot reaches it: a picture sent on its own arrives in the
1:1 chat with the bot only; in a group it must come in the same (richText) message as the @
and the text."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col, select

from handlers import replies as r
from handlers.context import Context, Refusal
from handlers.replies import Reply, Result
from models.lifecycle import record
from models.tables import Issue, IssueEvent, PhotoDownload

WINDOW = timedelta(minutes=10)


def _record(ctx: Context, issue: Issue, after_seq: int) -> None:
    data = {"codes": list(ctx.msg.pictures), "after_seq": after_seq}
    record(ctx.session, issue, "picture", actor_id=ctx.actor.id, at=ctx.at, msg_id=ctx.msg.msg_id, data=data)
    assert issue.id is not None
    for code in dict.fromkeys(ctx.msg.pictures):  # one fetch per code, even when a message repeats it
        ctx.session.add(
            PhotoDownload(
                issue_id=issue.id,
                event_seq=issue.event_count,
                msg_id=ctx.msg.msg_id,
                code=code,
                created_at=ctx.at,
            )
        )


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
