"""Near-duplicates of a new post: open issues from the same place in the last 30 days whose
text is alike (handlers.intake.similarity). The receipt points them out; 合并 folds them in."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from rapidfuzz import fuzz, process
from sqlalchemy import bindparam, select
from sqlmodel import Session

from handlers.intake import parser_for
from handlers.intake.places import PlaceFinder
from handlers.intake.similarity import DUPLICATE_THRESHOLD, MIN_CONTENT, bigrams, content
from models.directory import Directory
from models.tables import Issue

WINDOW = timedelta(days=30)
MAX_CANDIDATES = 200  # the newest; a village rarely has more in a month


_ISSUES = Issue.__table__  # type: ignore[attr-defined]
_RECENT = select(_ISSUES.c.id, _ISSUES.c.text).where(
    _ISSUES.c.created_at >= bindparam("since"), _ISSUES.c.created_at <= bindparam("until"), _ISSUES.c.status != "closed"
)
_NEWEST = (_ISSUES.c.id.desc(),)
# Built once, statement and cache key, as this runs for every new post. "The same place" is
# the village; without a village, the township (or nowhere named) with no village.
_BY_VILLAGE = _RECENT.where(_ISSUES.c.village_id == bindparam("village_id")).order_by(*_NEWEST).limit(MAX_CANDIDATES)
_BY_TOWNSHIP = (
    _RECENT.where(_ISSUES.c.township_id == bindparam("township_id"), _ISSUES.c.village_id.is_(None))
    .order_by(*_NEWEST)
    .limit(MAX_CANDIDATES)
)


def near_duplicates(session: Session, directory: Directory, data: dict[str, Any], at: datetime) -> list[int]:
    """Issue numbers, the most alike first, for the `created` data of a post not yet stored."""
    places = parser_for(directory).places
    mine = _prepared(data["text"], places)
    if not mine:  # too little content to judge: no candidates needed
        return []
    params: dict[str, Any] = {"since": at - WINDOW, "until": at}
    if data["village_id"] is not None:
        query, params["village_id"] = _BY_VILLAGE, data["village_id"]
    else:
        query, params["township_id"] = _BY_TOWNSHIP, data["township_id"]
    session.flush()  # a Core read does not autoflush; what this session changed must be seen
    rows = session.execute(query, params).all()
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
