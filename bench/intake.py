"""Intake parser on the labelled corpus: per-field accuracy and parse throughput (one core).

    .venv/bin/python bench/intake.py [--repeat N] [--sets dev,dev2]

Accuracy is shown for every set present and all; tests/data/README.md says which were tuned
against or trained on (tests/intake_corpus.TRAINING) and which are still unseen, the honest
figure for new posts; --sets measures only those named (to tune without looking at a holdout). "Place from
text" are the posts whose sender is not a village, where township and village must be read from
the text. Near-duplicate precision and recall are over every pair of posts from the same place."""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root, for tests/

from bot.org import load_org
from handlers.intake import IntakeParser
from handlers.intake.similarity import DUPLICATE_THRESHOLD, content, similarity
from tests.intake_corpus import EXTRA_SETS, FIELDS, SETS, Post, load, score

AIMS = {"township": 0.98, "village": 0.98, "category": 0.90, "litigation_risk": 0.97, "phones": 1.0, "deadline": 0.95}


def duplicates(parser: IntakeParser, posts: list[Post]) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) at the threshold."""
    tp = fp = fn = 0
    place = {p.id: (p.expect["township"], p.expect["village"]) for p in posts}
    for a, b in itertools.combinations(posts, 2):
        if place[a.id] != place[b.id] or place[a.id] == (None, None):
            continue
        same = a.dup_of == b.id or b.dup_of == a.id
        found = similarity(content(a.text, parser.places), content(b.text, parser.places)) >= DUPLICATE_THRESHOLD
        tp, fp, fn = tp + (same and found), fp + (found and not same), fn + (same and not found)
    return tp, fp, fn


def throughput(parser: IntakeParser, posts: list[Post], repeat: int) -> float:
    directory = parser.directory
    work = [(p.text, directory.resolve(p.sender), p.today) for p in posts]
    best = 0.0
    for _ in range(5):  # the best of five runs: the machine's noise only ever slows a run down
        start = time.perf_counter()
        for _ in range(repeat):
            for text, unit, today in work:
                parser.parse(text, unit, today)  # type: ignore[arg-type]
        best = max(best, len(work) * repeat / (time.perf_counter() - start))
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20, help="passes over the corpus per timing run")
    ap.add_argument("--sets", help="only these sets, comma-separated (default: every set present)")
    args = ap.parse_args()
    directory = load_org().directory
    parser = IntakeParser(directory)
    names = [*SETS, *(name for name, path in EXTRA_SETS.items() if path.exists())]
    if args.sets:
        names = [n for n in names if n in args.sets.split(",")]
    sets = {}
    for name in names:
        try:
            sets[name] = load(name)
        except (KeyError, TypeError, AttributeError) as e:  # not the corpus schema (yet)
            print(f"{name}: skipped, not in the corpus schema ({e.__class__.__name__}: {e})")
    sets["all"] = [p for posts in sets.values() for p in posts]
    scores = {name: score(parser, directory, posts) for name, posts in sets.items()}
    from_text = [p for p in sets["all"] if directory.resolve(p.sender).kind != "village"]  # type: ignore[union-attr]
    text_score = score(parser, directory, from_text)

    header = f"{'field':<16}" + "".join(f"{f'{n} ({len(sets[n])})':>15}" for n in scores) + f"{'from text':>12}   aim"
    print(header)
    print("-" * len(header))
    for field in FIELDS:
        row = f"{field:<16}" + "".join(f"{s.accuracy(field):>15.1%}" for s in scores.values())
        row += f"{text_score.accuracy(field):>12.1%}" if field in ("township", "village", "ambiguous") else " " * 12
        aim = AIMS.get(field)
        row += f"   ≥{aim:.0%}" if aim else ""
        print(row)
    for name in names:
        if name not in sets:
            continue
        tp, fp, fn = duplicates(parser, sets[name])
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        print(f"near-duplicates ({name}): precision {precision:.0%}, recall {recall:.0%} ({tp + fn} labelled pairs)")
    rate = throughput(parser, sets["all"], args.repeat)
    print(f"throughput: {rate:,.0f} posts/s on one core ({len(sets['all'])} posts × {args.repeat}, best of 5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
