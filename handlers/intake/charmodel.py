"""A linear model over a post's character 1-3-grams that gives each category a score (its
log-odds, up to a constant), trained on the labelled posts. It knows the wording the keyword
lists do not (漫水桥, 猪圈…臭, 易燃物); categories.CategoryModel adds its scores to the keyword
points. Trained by bench/train_category.py, shipped as data/category_chars.npz, loaded once.
Training is deterministic: a sorted vocabulary, zero start, a fixed number of full-batch steps."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt

NGRAMS = (1, 2, 3)
MIN_DF = 2  # an n-gram of one training post is that post's, not the category's
C = 1.0  # inverse L2 strength, on the summed log-loss
STEPS = 400
WINDOW = 10  # the line search's memory, in steps
SHIPPED = "data/category_chars.npz"

_SPACES = re.compile(r"\s+")


def ngrams(text: str) -> set[str]:
    text = _SPACES.sub(" ", text.lower())
    return {text[i : i + n] for n in NGRAMS for i in range(len(text) - n + 1)}


class CharModel:
    def __init__(self, categories: Sequence[str], vocabulary: Sequence[str], weights: npt.NDArray[np.float64]) -> None:
        """weights: one row per n-gram of the vocabulary, then the bias row; a column per category."""
        self.categories = tuple(categories)
        self.vocabulary = tuple(vocabulary)
        self.weights = np.asarray(weights, dtype=np.float64)
        self._index = {g: i for i, g in enumerate(self.vocabulary)}
        self._bias = len(self.vocabulary)
        assert self.weights.shape == (len(self.vocabulary) + 1, len(self.categories))

    def scores(self, text: str) -> dict[str, float]:
        index = self._index
        rows = [i for g in ngrams(text) if (i := index.get(g)) is not None]
        rows.append(self._bias)
        z = self.weights[rows].sum(axis=0)
        z -= z.mean()  # only differences count; centred, a score reads as for or against
        return dict(zip(self.categories, z.tolist(), strict=True))

    def classify(self, text: str) -> str:
        s = self.scores(text)
        return max(s, key=lambda c: s[c])

    def save(self, path: str | Path) -> None:
        """An .npz (np.load reads it) with fixed entry dates: the same model, the same bytes."""
        arrays = {
            "categories": np.array(self.categories),
            "vocabulary": np.array(self.vocabulary),
            "weights": self.weights.astype(np.float32),
        }
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
            for name, array in arrays.items():
                entry = io.BytesIO()
                np.lib.format.write_array(entry, array, allow_pickle=False)
                z.writestr(
                    zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)),
                    entry.getvalue(),
                    zipfile.ZIP_DEFLATED,
                )
        Path(path).write_bytes(buffer.getvalue())

    @classmethod
    def from_bytes(cls, data: bytes) -> CharModel:
        with np.load(io.BytesIO(data), allow_pickle=False) as f:
            return cls(f["categories"].tolist(), f["vocabulary"].tolist(), f["weights"])


def fit(texts: Sequence[str], labels: Sequence[str], categories: Sequence[str], steps: int = STEPS) -> CharModel:
    """Multinomial logistic regression, L2-penalised (the bias is not), by gradient descent with
    Barzilai-Borwein steps kept in check by a non-monotone line search: on this convex loss it
    converges in a few hundred full-batch steps with no step size to tune, and no randomness."""
    grams = [ngrams(t) for t in texts]
    df: dict[str, int] = {}
    for gs in grams:
        for g in gs:
            df[g] = df.get(g, 0) + 1
    vocabulary = sorted(g for g, n in df.items() if n >= MIN_DF)
    index = {g: i for i, g in enumerate(vocabulary)}
    x = np.zeros((len(texts), len(vocabulary) + 1))
    for row, gs in enumerate(grams):
        x[row, [index[g] for g in gs if g in index]] = 1.0
    x[:, -1] = 1.0
    column = {c: k for k, c in enumerate(categories)}
    y = np.zeros((len(texts), len(categories)))
    y[np.arange(len(texts)), [column[label] for label in labels]] = 1.0
    penalised = np.ones((len(vocabulary) + 1, 1))
    penalised[-1] = 0.0

    def loss_and_gradient(w: npt.NDArray[np.float64]) -> tuple[float, npt.NDArray[np.float64]]:
        z = x @ w
        z -= z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        loss = float(-(y * log_p).sum() + (penalised * w * w).sum() / (2 * C))
        out: npt.NDArray[np.float64] = x.T @ (np.exp(log_p) - y) + penalised * w / C
        return loss, out

    w = np.zeros((len(vocabulary) + 1, len(categories)))
    loss, grad = loss_and_gradient(w)
    recent = [loss]
    step = 1e-3
    for _ in range(steps):
        # A Barzilai-Borwein step is not a descent step on this loss: one that rises above the
        # worst of the last few is halved until it does not (a non-monotone line search).
        while True:
            w_next = w - step * grad
            loss_next, grad_next = loss_and_gradient(w_next)
            if loss_next <= max(recent[-WINDOW:]) - 1e-4 * step * float((grad * grad).sum()) or step < 1e-12:
                break
            step /= 2
        dw, dg = w_next - w, grad_next - grad
        curvature = float((dw * dg).sum())
        step = float((dw * dw).sum()) / curvature if curvature > 0 else step
        w, grad = w_next, grad_next
        recent.append(loss_next)
    return CharModel(categories, vocabulary, w)


def accuracy(model: CharModel, texts: Iterable[str], labels: Iterable[str]) -> float:
    pairs = list(zip(texts, labels, strict=True))
    return sum(model.classify(t) == y for t, y in pairs) / len(pairs) if pairs else 1.0


@cache
def shipped() -> CharModel:
    return CharModel.from_bytes(resources.files("handlers.intake").joinpath(SHIPPED).read_bytes())
