"""The unit tree in memory: resolve a unit by name, alias or `乡镇/村`, and answer scope
questions. Built from the database (or from an org file before it reaches the database)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlmodel import Session, select

from models.tables import Unit


@dataclass(frozen=True)
class UnitInfo:
    id: int
    name: str
    kind: str  # district | township | village | department
    parent_id: int | None
    aliases: tuple[str, ...] = ()


class AmbiguousUnit(LookupError):
    def __init__(self, name: str, candidates: list[UnitInfo]) -> None:
        super().__init__(name)
        self.name = name
        self.candidates = candidates


@dataclass
class Directory:
    units: dict[int, UnitInfo]
    _by_label: dict[str, list[int]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        labels: dict[str, list[int]] = defaultdict(list)
        for u in self.units.values():
            for label in {u.name, *u.aliases}:
                labels[label].append(u.id)
        self._by_label = dict(labels)

    @classmethod
    def load(cls, session: Session) -> Directory:
        rows = session.exec(select(Unit)).all()
        return cls({u.id: UnitInfo(u.id, u.name, u.kind, u.parent_id, tuple(u.aliases)) for u in rows if u.id})

    @property
    def district(self) -> UnitInfo:
        return next(u for u in self.units.values() if u.kind == "district")

    def get(self, unit_id: int) -> UnitInfo:
        return self.units[unit_id]

    def resolve(self, text: str) -> UnitInfo | None:
        """A unit by name, alias or `乡镇/村`; None when unknown; AmbiguousUnit when a bare
        village name exists in several townships."""
        text = text.strip()
        if "/" in text:
            upper, _, lower = text.partition("/")
            parent = self.resolve(upper)
            if parent is None:
                return None
            hits = [
                self.units[i] for i in self._by_label.get(lower.strip(), []) if self.units[i].parent_id == parent.id
            ]
            return hits[0] if hits else None
        ids = self._by_label.get(text, [])
        if len(ids) > 1:
            raise AmbiguousUnit(text, [self.units[i] for i in ids])
        return self.units[ids[0]] if ids else None

    def find(self, name: str | None) -> UnitInfo | None:
        """For a command-line `--unit`: the district when none is given; None when the name is
        unknown or names villages in several townships."""
        if not name:
            return self.district
        try:
            return self.resolve(name)
        except AmbiguousUnit:
            return None

    def labels(self) -> dict[str, list[int]]:
        return self._by_label

    def township_of(self, unit: UnitInfo) -> UnitInfo | None:
        if unit.kind == "township":
            return unit
        if unit.kind == "village" and unit.parent_id is not None:
            return self.units[unit.parent_id]
        return None

    def contains(self, outer_id: int, inner_id: int) -> bool:
        """Is `inner` the unit `outer` or below it (a village in its township, a department in the district)?"""
        unit: UnitInfo | None = self.units.get(inner_id)
        while unit is not None:
            if unit.id == outer_id:
                return True
            unit = self.units.get(unit.parent_id) if unit.parent_id is not None else None
        return False

    def level_of(self, unit: UnitInfo) -> str:
        """The issue level a unit works at (departments work at district level)."""
        return {"village": "village", "township": "township"}.get(unit.kind, "district")

    def full_name(self, unit: UnitInfo) -> str:
        township = self.township_of(unit)
        if unit.kind == "village" and township:
            return f"{township.name}·{unit.name}"
        return unit.name

    def place(self, township_id: int | None, village_id: int | None) -> str:
        """Where an issue is, as every message and page names it: 花园街道·上洋村, 花园街道, or the
        district when it names neither."""
        unit = self.units.get(village_id or township_id or 0)
        return self.full_name(unit) if unit else self.district.name

    def departments(self) -> list[UnitInfo]:
        return [u for u in self.units.values() if u.kind == "department"]
