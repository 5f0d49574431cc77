"""Leave-one-set-out estimate of the category classifier on posts it was not trained on.

    .venv/bin/python bench/category_cv.py [--weights 1,2,3]

For each of the labelled sets of tests/intake_corpus.TRAINING (never the unseen ones): the
character model is trained on the other sets and the classifier measured on this one, keywords
alone (the shipped categories.yaml, which is not retrained per fold: its vocabulary was written
while reading dev and dev2, so those two folds flatter it) and keywords plus the character model
at each weight. The mean over the folds is the estimate for new posts."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root, for tests/

from bench.train_category import texts_and_labels, train
from bot.org import load_org
from handlers.intake import IntakeParser
from handlers.intake.categories import CHAR_WEIGHT, CategoryModel, shipped_file
from tests.intake_corpus import TRAINING, load


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=str(CHAR_WEIGHT), help="character model weights to try, comma-separated")
    args = ap.parse_args()
    weights = [float(w) for w in args.weights.split(",")]
    parser = IntakeParser(load_org().directory, CategoryModel({}))
    keywords = CategoryModel.from_yaml(shipped_file())
    sets = {name: load(name) for name in TRAINING}
    rows: dict[str, list[float]] = {"keywords": [], **{f"+ chars ×{w:g}": [] for w in weights}}
    for held, posts in sets.items():
        chars = train(parser, [p for name, ps in sets.items() if name != held for p in ps])
        texts, labels = texts_and_labels(parser, posts)
        rows["keywords"].append(sum(keywords.classify(t) == y for t, y in zip(texts, labels, strict=True)) / len(posts))
        for w in weights:
            model = CategoryModel(keywords.keywords, chars)
            right = sum(model.classify(t, w) == y for t, y in zip(texts, labels, strict=True))
            rows[f"+ chars ×{w:g}"].append(right / len(posts))
    header = f"{'':<16}" + "".join(f"{f'{n} ({len(p)})':>16}" for n, p in sets.items()) + f"{'mean':>8}"
    print(header)
    print("-" * len(header))
    for name, accs in rows.items():
        print(f"{name:<16}" + "".join(f"{a:>16.1%}" for a in accs) + f"{sum(accs) / len(accs):>8.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
