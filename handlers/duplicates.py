"""Near-duplicates of a new post: open issues from the same place in the last 30 days whose
text is alike (handlers.intake.similarity). The receipt points them out; 合并 folds them in."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from handlers.intake import parser_for
from handlers.intake.similarity import DUPLICATE_THRESHOLD, content, similarity
from models.directory import Directory
from models.tables import Issue

WINDOW = timedelta(days=30)
MAX_CANDIDATES = 200  # the newest; a village rarely has more in a month


def near_duplicates(session: Session, directory: Directory, data: dict[str, Any], at: datetime) -> list[int]:
    """Issue numbers, the most alike first, for the `created` data of a post not yet stored."""
    query = select(Issue.id, Issue.text).where(
        col(Issue.created_at) >= at - WINDOW, col(Issue.created_at) <= at, Issue.status != "closed"
    )
    if data["village_id"] is not None:
        query = query.where(Issue.village_id == data["village_id"])
    else:  # "the same place" is the township, or nowhere named, without a village
        query = query.where(Issue.township_id == data["township_id"], col(Issue.village_id).is_(None))
    rows = session.exec(query.order_by(col(Issue.id).desc()).limit(MAX_CANDIDATES)).all()
    places = parser_for(directory).places
    mine = content(data["text"], places)
    scored = [(similarity(mine, content(text, places)), number) for number, text in rows if number is not None]
    return [number for score, number in sorted(scored, reverse=True) if score >= DUPLICATE_THRESHOLD]
