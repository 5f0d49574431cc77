"""The intake parser on the labelled corpus (tests/data): a fixed subset case by case, and
accuracy floors at what the parser reaches today, per set and field (a floor, not a timing)."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from bot.org import load_org
from handlers.intake import TITLE_LENGTH, IntakeParser, has_id_number, phones_in
from handlers.intake.categories import CATEGORIES
from handlers.intake.similarity import DUPLICATE_THRESHOLD, content, similarity
from tests.intake_corpus import FIELDS, SETS, Post, actual, load, score

DIRECTORY = load_org().directory
PARSER = IntakeParser(DIRECTORY)
POSTS = {p.id: p for p in load()}

# Correct counts reached when this was written; raise them when the parser gets better. The
# category counts are those of the keyword lists alone: the character model is trained on these
# sets, so what it scores on them is no measure (bench/category_cv.py is).
FLOORS = {
    "dev": {"township": 240, "village": 240, "ambiguous": 240, "category": 224, "litigation_risk": 238,
            "phones": 240, "has_id_number": 240, "deadline": 240},
    "dev2": {"township": 100, "village": 99, "ambiguous": 100, "category": 94, "litigation_risk": 97,
             "phones": 100, "has_id_number": 100, "deadline": 100},
    "holdout": {"township": 85, "village": 85, "ambiguous": 85, "category": 68, "litigation_risk": 84,
                "phones": 85, "has_id_number": 85, "deadline": 85},
    "holdout2": {"township": 120, "village": 120, "ambiguous": 120, "category": 110, "litigation_risk": 120,
                 "phones": 120, "has_id_number": 120, "deadline": 119},
    "holdout3": {"township": 160, "village": 160, "ambiguous": 160, "category": 124, "litigation_risk": 158,
                 "phones": 160, "has_id_number": 160, "deadline": 159},
}  # fmt: skip

# One post for each rule the issue names: templates, rambles, aliases used as places or as
# words, the longest name, 新村 in two townships, negated and withdrawn risk, every phone form,
# ID checksums, every deadline form, full-width digits and emoji.
FIXED = (1, 2, 8, 9, 13, 17, 20, 24, 30, 38, 46, 49, 61, 70, 71, 73, 83, 84, 87, 94, 96, 103, 107, 121, 125, 126,
         127, 129, 132, 138, 139, 140, 141, 164, 165, 168, 169, 171, 172, 173, 175, 176, 177, 186, 187,
         188, 197, 203, 219, 221, 222, 229, 240, 1014, 1023, 1032, 1043, 1051, 1077, 1083, 1089)  # fmt: skip


def test_the_corpus_is_large_varied_and_well_formed() -> None:
    posts = list(POSTS.values())
    assert len(posts) >= 300 and len(POSTS) == len(posts)  # ids unique across the sets
    assert all(DIRECTORY.resolve(p.sender) is not None for p in posts)
    categories = Counter(p.expect["category"] for p in posts)
    assert set(categories) == set(CATEGORIES) and min(categories.values()) >= 15
    senders = Counter(DIRECTORY.resolve(p.sender).kind for p in posts)  # type: ignore[union-attr]
    assert senders["village"] >= 150 and senders["township"] >= 50 and senders["district"] + senders["department"] >= 50
    assert sum(p.expect["litigation_risk"] for p in posts) >= 55  # 是 only: a suit against the government
    assert sum(bool(p.expect["phones"]) for p in posts) >= 30 and sum(p.expect["has_id_number"] for p in posts) >= 5
    assert sum(bool(p.expect["deadline"]) for p in posts) >= 40 and sum(bool(p.expect["ambiguous"]) for p in posts) >= 4
    assert (
        sum("\n" in p.text for p in posts) >= 8
        and sum(any(0xFF10 <= ord(c) <= 0xFF19 for c in p.text) for p in posts) >= 3
    )
    for p in posts:
        if p.dup_of is not None:
            original = POSTS[p.dup_of]
            assert (original.expect["township"], original.expect["village"]) == (
                p.expect["township"],
                p.expect["village"],
            )


@pytest.mark.parametrize("number", FIXED)
def test_fixed_case(number: int) -> None:
    post = POSTS[number]
    got = actual(PARSER, DIRECTORY, post)
    assert {f: got[f] for f in FIELDS} == post.expect


@pytest.mark.parametrize("name", list(SETS))
def test_accuracy_does_not_fall_below_the_floor(name: str) -> None:
    s = score(PARSER, DIRECTORY, load(name))
    below = {f: (s.right[f], floor) for f, floor in FLOORS[name].items() if s.right[f] < floor}
    assert below == {}, [(p.id, f, e, g) for p, f, e, g in s.errors]


def test_aims_of_the_issue_on_the_whole_corpus() -> None:
    """Those the parser meets on every set, unseen posts included; category is below its aim of
    90% on the holdout (see bench/intake.py) and is held by its floors instead."""
    s = score(PARSER, DIRECTORY, list(POSTS.values()))
    assert s.accuracy("township") >= 0.98 and s.accuracy("village") >= 0.98
    assert s.accuracy("litigation_risk") >= 0.97 and s.accuracy("deadline") >= 0.95
    assert s.accuracy("phones") == 1.0


def test_every_title_is_one_short_line_without_phone_or_id_numbers() -> None:
    for post in POSTS.values():
        title = PARSER.parse(post.text, DIRECTORY.resolve(post.sender), post.today).title  # type: ignore[arg-type]
        assert 0 < len(title) <= TITLE_LENGTH and "\n" not in title, post.id
        assert not phones_in(title) and not has_id_number(title), post.id


def _pairs(posts: list[Post]) -> list[tuple[Post, Post]]:
    place = {p.id: (p.expect["township"], p.expect["village"]) for p in posts}
    return [(a, b) for a, b in itertools.combinations(posts, 2) if place[a.id] == place[b.id] != (None, None)]


def test_labelled_near_duplicates_are_found_and_few_others() -> None:
    found = {
        (a.id, b.id)
        for name in SETS
        for a, b in _pairs(load(name))
        if similarity(content(a.text, PARSER.places), content(b.text, PARSER.places)) >= DUPLICATE_THRESHOLD
    }
    labelled = {(p.dup_of, p.id) for p in POSTS.values() if p.dup_of is not None}
    # Recall: every pair of the tuned sets and the first holdout; holdout2's one pair (5051/5067,
    # written blind later) is missed at the tuned threshold. A floor, to be raised.
    assert labelled - found <= {(5051, 5067)}
    # Precision: one false hint at the tuned threshold, and holdout3's two (written blind: the
    # same place's shop and 安置房 matters, told in like words) as measured, not tuned away.
    assert len(found - labelled - {(6014, 6094), (6024, 6135)}) <= 1
