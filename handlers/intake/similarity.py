"""Near-duplicate posts: how alike two posts are once what every post from one place shares
is taken out (the place names, template labels, stock words, numbers), as the token-set
similarity of their character bigrams (rapidfuzz), 0-100."""

from __future__ import annotations

import re

from rapidfuzz import fuzz

from handlers.intake.places import PlaceFinder
from handlers.intake.text import clean

# Tuned on the labelled pairs of tests/data (dup_of); bench/intake.py reports precision and recall.
DUPLICATE_THRESHOLD = 45.0
MIN_CONTENT = 6  # characters: below this two posts share too little to judge
_STOCK = re.compile(
    "反映|村民|居民|群众|社区|村里|村委会|村委|问题|情况|联系电话|电话|联系人|联系方式|诉求|所在村|反映人|问题描述"
    "|两难问题|某某|要求|希望|尽快|解决|处理|目前|现在|已经|一直|还是|没有|今天|昨天|又|的|了|说"
)
_NOT_HAN = re.compile(r"[^\u4e00-\u9fff]+")


def content(text: str, places: PlaceFinder) -> str:
    text = places.without_places(clean(text))
    return _STOCK.sub("", _NOT_HAN.sub("", text))


def bigrams(text: str) -> str:
    return " ".join(text[i : i + 2] for i in range(len(text) - 1))


def similarity(a: str, b: str) -> float:
    """Of two `content` strings."""
    if min(len(a), len(b)) < MIN_CONTENT:
        return 0.0
    return float(fuzz.token_set_ratio(bigrams(a), bigrams(b)))


def is_near_duplicate(a: str, b: str) -> bool:
    return similarity(a, b) >= DUPLICATE_THRESHOLD
