"""The character model of the category classifier: training is deterministic, the saved file
reads back to the same scores, and the shipped one is the trained model of the ten categories."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from handlers.intake.categories import CATEGORIES, CategoryModel, default_model
from handlers.intake.charmodel import CharModel, fit, ngrams, shipped
from tests.intake_corpus import load

POSTS = load("dev2")


def _fit() -> CharModel:
    return fit([p.text for p in POSTS], [p.expect["category"] for p in POSTS], CATEGORIES, steps=60)


def test_training_is_deterministic_and_the_file_reads_back(tmp_path: Path) -> None:
    a, b = _fit(), _fit()
    assert a.vocabulary == b.vocabulary and np.array_equal(a.weights, b.weights)
    a.save(tmp_path / "a.npz")
    b.save(tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    back = CharModel.from_bytes((tmp_path / "a.npz").read_bytes())
    text = POSTS[0].text
    assert back.vocabulary == a.vocabulary
    assert all(abs(back.scores(text)[c] - a.scores(text)[c]) < 1e-4 for c in CATEGORIES)


def test_an_n_gram_of_one_post_only_is_not_learned() -> None:
    model = _fit()
    once = {g for g in ngrams(POSTS[0].text) if sum(g in ngrams(p.text) for p in POSTS) == 1}
    assert once and not once & set(model.vocabulary)


def test_the_shipped_model_is_loaded_once_and_used_by_default() -> None:
    chars = shipped()
    assert chars is shipped() and chars.categories == CATEGORIES and len(chars.vocabulary) > 1000
    assert default_model().chars is chars
    assert chars.classify("自来水停了三天,水管爆了没人修") == "基础设施"
    assert chars.classify("老板拖欠工资半年不给") == "劳资纠纷"


def test_keywords_still_count_with_the_model() -> None:
    """A word the model has no opinion on is decided by the file's points."""
    assert default_model().classify("葡萄架倒了") == "其他"
    edited = CategoryModel.from_yaml("环境与生态:\n  强: [葡萄架]\n", chars=shipped())
    assert edited.classify("葡萄架倒了") == "环境与生态"
    # and the keyword points add to the model's, point for point: a vague post the model files
    # under 其他 with some confidence takes more than one 强 word of the file to move
    leaning = "村里有点事"
    assert default_model().classify(leaning) == "其他"
    bare = CategoryModel({}, shipped()).explain(leaning)[1]
    one = CategoryModel.from_yaml("基础设施:\n  强: [有点事]\n", chars=shipped()).explain(leaning)[1]
    assert one["基础设施"] - bare["基础设施"] == pytest.approx(3 * 1.25) and one["其他"] == bare["其他"]  # first clause
    two = CategoryModel.from_yaml("基础设施:\n  强: [有点事, 村里有]\n", chars=shipped())
    assert two.classify(leaning) == "基础设施"
