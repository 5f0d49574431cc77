"""Where a post is about: township and village names and aliases found in one pass of an
Aho-Corasick automaton built once per directory (leftmost-longest, so 上洋村 beats 上洋).

A full name always counts, and so does an alias that is itself a street name (坊门街). A bare
alias is often an ordinary word too (鱼塘, 茶铺, 林家, 学院, 花园), so it counts only where the
text uses it as a place: before a place word (上洋社区, 航埠这边, 东港居民), as the subject of a
report (东坑反映, 北二报), opening the post (南区有几个老人…), after a field label (所在村:上洋),
or next to its own township (花园上洋, 航埠·北二) or a sibling village (静岩、坎底两个村)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import ahocorasick

from models.directory import Directory, UnitInfo

_PLACE_WORD = re.compile(
    r"村|社区|街道|镇|乡|辖区|片区|片|一带|境内|范围|自然村|组|这边|那边|这里|那里|村民|居民|群众|农户|住户|小区"
)
_FIELD_LABEL = re.compile(
    r"(?:所在村|所在社区|村社区|村\(社区\)|村社|村居|社区|所在地|地点|地址|位置|属地|乡镇|街道|单位|来源|所属)"
    r"(?:\(社区\)|\(街道\))?\s*:\s*$"
)
_REPORTS = re.compile(r"反映|报告|汇报|上报|报:|来电|有人|有个|有户|有一|有几|有位|有村民|有居民")
# Opening the post, an alias is the place unless the next words make it a thing (林家的房子, 鱼塘被污染).
_OPENING_FOLLOWER = re.compile(r"[\s,:;、。!?]|有|那|这")
_STREET = ("街", "路", "巷")
_JOINER = frozenset(" /·-")
_LIST_JOINER = frozenset("、和与及")


@dataclass(frozen=True)
class Mention:
    start: int
    end: int  # exclusive
    units: tuple[UnitInfo, ...]  # more than one where a name exists in two townships
    alias: bool  # matched only as an alias of every unit in `units`


@dataclass(frozen=True)
class Place:
    township: UnitInfo | None
    village: UnitInfo | None
    ambiguous: tuple[UnitInfo, ...] = ()  # the villages the post may mean: ask, do not guess


class PlaceFinder:
    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self._automaton = ahocorasick.Automaton()
        entries: dict[str, list[tuple[UnitInfo, bool]]] = {}
        for unit in directory.units.values():
            if unit.kind not in ("township", "village"):
                continue
            for label in {unit.name, *unit.aliases}:
                if len(label) >= 2:
                    entries.setdefault(label, []).append((unit, label != unit.name))
        for label, units in entries.items():
            self._automaton.add_word(label, (len(label), tuple(u for u, _ in units), all(a for _, a in units)))
        self._empty = not entries
        if not self._empty:
            self._automaton.make_automaton()

    def mentions(self, text: str) -> list[Mention]:
        """The units the text names, in order; bare aliases only where used as a place."""
        if self._empty:
            return []
        found = [
            Mention(end + 1 - length, end + 1, units, alias)
            for end, (length, units, alias) in self._automaton.iter_long(text)
        ]
        return [m for i, m in enumerate(found) if not m.alias or self._used_as_place(text, found, i)]

    def without_places(self, text: str, fill: str = " ") -> str:
        """The text with every unit name and alias blanked out (by `fill`), however it is used."""
        if self._empty:
            return text
        chars = list(text)
        for end, (length, _units, _alias) in self._automaton.iter_long(text):
            chars[end + 1 - length : end + 1] = fill * length
        return "".join(chars)

    def _used_as_place(self, text: str, found: list[Mention], i: int) -> bool:
        m = found[i]
        label = text[m.start : m.end]
        if label.endswith(_STREET) or _PLACE_WORD.match(text, m.end) or _REPORTS.match(text, m.end):
            return True
        if _FIELD_LABEL.search(text, max(0, m.start - 14), m.start):
            return True
        if _opening(text, m.start) and (m.end == len(text) or _OPENING_FOLLOWER.match(text, m.end)):
            return True
        for j in (i - 1, i + 1):
            if 0 <= j < len(found):
                first, second = found[min(i, j)], found[max(i, j)]
                gap = text[first.end : second.start]
                if len(gap) > 1:
                    continue
                if all(ch in _JOINER for ch in gap) and _parent_child(m.units, found[j].units):
                    return True
                if gap and gap in _LIST_JOINER and _siblings(m.units, found[j].units):
                    return True
        return False

    def place(self, text: str, sender: UnitInfo) -> Place:
        """Village staff report their own village; a township's staff one of its villages;
        the district and departments anywhere. Unnamed, the sender's own unit."""
        d = self.directory
        if sender.kind == "village":
            return Place(d.township_of(sender), sender)
        mentions = self.mentions(text)
        if sender.kind == "township":
            for m in mentions:
                for u in m.units:
                    if u.kind == "village" and u.parent_id == sender.id:
                        return Place(sender, u)
            return Place(sender, None)
        towns = [(m.start, u) for m in mentions for u in m.units if u.kind == "township"]
        ambiguous: tuple[UnitInfo, ...] = ()
        for m in mentions:
            villages = [u for u in m.units if u.kind == "village"]
            if len(villages) == 1:
                return Place(d.township_of(villages[0]), villages[0])
            parents = {v.parent_id: v for v in villages}
            named = sorted((abs(start - m.start), t.id) for start, t in towns if t.id in parents)
            if named:
                village = parents[named[0][1]]
                return Place(d.township_of(village), village)
            if villages and not ambiguous:
                ambiguous = tuple(villages)
        township = towns[0][1] if towns else None
        if ambiguous and township is None:
            return Place(None, None, ambiguous)
        return Place(township, None)


def _opening(text: str, start: int) -> bool:
    """At the start of the post or of one of its lines, after any 【header】."""
    before = text[:start].rstrip(" ")
    return not before or before.endswith(("\n", "】", ":"))


def _parent_child(units: tuple[UnitInfo, ...], others: tuple[UnitInfo, ...]) -> bool:
    return any(u.parent_id == o.id or o.parent_id == u.id for u in units for o in others)


def _siblings(units: tuple[UnitInfo, ...], others: tuple[UnitInfo, ...]) -> bool:
    return any(u.kind == o.kind == "village" and u.parent_id == o.parent_id for u in units for o in others)
