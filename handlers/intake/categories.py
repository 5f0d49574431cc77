"""The category of a post (PRODUCT §4.1) from a keyword model kept in a YAML file that
officials edit: each keyword scores its category (强 3, 中 2, 弱 1 point), each distinct keyword
once; the highest score wins; a tie, or less than 2 points (one weak word), is 其他."""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import cache
from importlib import resources
from pathlib import Path

import ahocorasick
import yaml

CATEGORIES = (
    "土地征迁",
    "宅基地与农房",
    "劳资纠纷",
    "邻里与婚姻家庭",
    "环境与生态",
    "基础设施",
    "社会保障与救助",
    "企业与经营",
    "行政执法",
    "其他",
)
OTHER = "其他"
WEIGHTS = {"强": 3, "中": 2, "弱": 1}
MIN_SCORE = 2  # one weak word is not a signal
ENV_FILE = "LIANDONG_CATEGORY_FILE"


class CategoryFileError(ValueError):
    """A bad category file: the message says what and where, in Chinese."""


class CategoryModel:
    def __init__(self, keywords: dict[str, tuple[str, int]]) -> None:
        self.keywords = keywords  # keyword -> (category, points)
        self._automaton = ahocorasick.Automaton()
        for word, (category, points) in keywords.items():
            self._automaton.add_word(word, (word, category, points))
        if keywords:
            self._automaton.make_automaton()

    def classify(self, text: str) -> str:
        if not self.keywords:
            return OTHER
        scores: dict[str, int] = {}
        seen: set[str] = set()
        for word, category, points in _outermost(self._automaton.iter(text)):
            if word not in seen:
                seen.add(word)
                scores[category] = scores.get(category, 0) + points
        if not scores:
            return OTHER
        ranked = sorted(scores.values(), reverse=True)
        if ranked[0] < MIN_SCORE or (len(ranked) > 1 and ranked[0] == ranked[1]):
            return OTHER
        return max(scores, key=scores.__getitem__)

    @classmethod
    def from_yaml(cls, text: str, source: str = "类别文件") -> CategoryModel:
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise CategoryFileError(f"{source}: YAML 格式错误 ({getattr(e, 'problem', e)})") from e
        if not isinstance(raw, dict):
            raise CategoryFileError(f"{source}: 顶层应为「类别: {{强/中/弱: [关键词…]}}」")
        keywords: dict[str, tuple[str, int]] = {}
        for category, levels in raw.items():
            if category not in CATEGORIES or category == OTHER:
                raise CategoryFileError(f"{source}: 未知类别「{category}」,可用:{'、'.join(CATEGORIES[:-1])}")
            if not isinstance(levels, dict):
                raise CategoryFileError(f"{source}: 类别「{category}」下应为 强/中/弱 三组关键词")
            for level, words in levels.items():
                if level not in WEIGHTS or not isinstance(words, list):
                    raise CategoryFileError(
                        f"{source}: 类别「{category}」的「{level}」应为 强/中/弱 之一,后接关键词列表"
                    )
                for word in words:
                    word = str(word).strip()
                    if len(word) < 2:
                        raise CategoryFileError(f"{source}: 类别「{category}」的关键词「{word}」太短(至少2个字)")
                    if word in keywords:
                        raise CategoryFileError(
                            f"{source}: 关键词「{word}」同时出现在「{keywords[word][0]}」和「{category}」"
                        )
                    keywords[word] = (category, WEIGHTS[level])
        return cls(keywords)

    @classmethod
    def load(cls, path: str | Path) -> CategoryModel:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise CategoryFileError(f"{path}: 无法读取类别文件 ({e.__class__.__name__})") from e
        return cls.from_yaml(text, str(path))


def _outermost(matches: Iterable[tuple[int, tuple[str, str, int]]]) -> list[tuple[str, str, int]]:
    """Every keyword found, less those inside a longer one found at the same place: 拖欠工资
    counts once, not also as 工资; overlapping words (居民楼下水道: 楼下, 下水道) both count."""
    spans = sorted(((end - len(v[0]) + 1, end + 1, v) for end, v in matches), key=lambda s: s[0] - s[1])
    kept: list[tuple[int, int, tuple[str, str, int]]] = []
    for start, end, value in spans:
        if not any(k_start <= start and end <= k_end for k_start, k_end, _ in kept):
            kept.append((start, end, value))
    return [value for _, _, value in kept]


@cache
def default_model() -> CategoryModel:
    """The file named by LIANDONG_CATEGORY_FILE, else the one shipped with the bot."""
    override = os.environ.get(ENV_FILE)
    if override:
        return CategoryModel.load(override)
    shipped = resources.files("handlers.intake").joinpath("data/categories.yaml").read_text(encoding="utf-8")
    return CategoryModel.from_yaml(shipped, "categories.yaml")
