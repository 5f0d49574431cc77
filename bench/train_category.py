"""Trains the character model of the category classifier (handlers/intake/charmodel.py) on the
labelled posts and writes it where the package ships it.

    .venv/bin/python bench/train_category.py [--out PATH]

Trained on the sets of tests/intake_corpus.TRAINING only: the blind sets added after them stay
unseen, to measure it. The same corpus gives the same file, byte for byte."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root, for tests/

from bot.org import load_org
from handlers.intake import IntakeParser
from handlers.intake.categories import CATEGORIES, CategoryModel
from handlers.intake.charmodel import SHIPPED, CharModel, accuracy, fit
from handlers.intake.text import clean
from tests.intake_corpus import TRAINING, Post, load

OUT = Path(__file__).resolve().parent.parent / "handlers" / "intake" / SHIPPED


def texts_and_labels(parser: IntakeParser, posts: list[Post]) -> tuple[list[str], list[str]]:
    return [parser.category_text(clean(p.text)) for p in posts], [p.expect["category"] for p in posts]


def train(parser: IntakeParser, posts: list[Post]) -> CharModel:
    return fit(*texts_and_labels(parser, posts), CATEGORIES)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    parser = IntakeParser(load_org().directory, CategoryModel({}))
    posts = load(*TRAINING)
    model = train(parser, posts)
    model.save(args.out)
    texts, labels = texts_and_labels(parser, posts)
    print(
        f"{args.out}: {len(model.vocabulary)} n-grams × {len(model.categories)} categories from {len(posts)} posts "
        f"({', '.join(TRAINING)}); accuracy on them alone {accuracy(model, texts, labels):.1%}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
