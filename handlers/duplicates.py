"""Near-duplicates of a new post: open issues from the same place in the last 30 days whose
text is alike (handlers.intake.similarity). The receipt points them out; 合并 folds them in."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from rapidfuzz import fuzz, process
from sqlmodel import Session, col, select

from handlers.intake import parser_for
from handlers.intake.places import PlaceFinder
from handlers.intake.similarity import DUPLICATE_THRESHOLD, MIN_CONTENT, bigrams, content
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
    mine = _prepared(data["text"], places)
    if not mine:
        return []
    choices = {number: _prepared(text, places) for number, text in rows if number is not None}
    hits = process.extract(
        mine,
        {n: c for n, c in choices.items() if c},
        scorer=fuzz.token_set_ratio,
        score_cutoff=DUPLICATE_THRESHOLD,
        limit=None,
    )
    return [number for _choice, _score, number in sorted(hits, key=lambda h: (-h[1], -h[2]))]


@lru_cache(maxsize=20_000)
def _prepared(text: str, places: PlaceFinder) -> str:
    """The bigram string `similarity` compares; cached, as every post is compared with up to
    MAX_CANDIDATES older ones from its village."""
    return bigrams(content(text, places)) if len(content(text, places)) >= MIN_CONTENT else ""
