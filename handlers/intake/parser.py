"""A chat post → the fields of an issue. Pure: the directory is compiled once into an
automaton, the category model is loaded once; parsing does no I/O."""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from handlers.intake.categories import CategoryModel, default_model
from handlers.intake.due import deadline_in
from handlers.intake.places import PlaceFinder
from handlers.intake.risk import litigation_kind
from handlers.intake.text import clean
from handlers.intake.titles import title_of
from models.calendar import WorkdayCalendar
from models.directory import Directory, UnitInfo
from models.masking import has_id_number, phones_in

JSON_KEYS = (
    "township",
    "village",
    "category",
    "litigation_risk",
    "litigation_suspected",
    "phones",
    "has_id_number",
    "deadline",
    "title",
)


@dataclass(frozen=True)
class Intake:
    township: UnitInfo | None
    village: UnitInfo | None
    title: str
    litigation_risk: bool  # 是
    phones: list[str] = field(default_factory=list)
    has_id_number: bool = False
    litigation_suspected: bool = False  # 疑似
    category: str = "其他"
    deadline: date | None = None  # what the post asks for, e.g. 限3天 → its date
    ambiguous: tuple[str, ...] = ()  # a village name of several townships, as 乡镇/村: ask which

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "township": self.township.name if self.township else None,
            "village": self.village.name if self.village else None,
            "category": self.category,
            "litigation_risk": self.litigation_risk,
            "litigation_suspected": self.litigation_suspected,
            "phones": list(self.phones),
            "has_id_number": self.has_id_number,
            "deadline": self.deadline.isoformat() if self.deadline else None,
            "title": self.title,
        }
        if self.ambiguous:
            out["ambiguous"] = list(self.ambiguous)
        return out


class IntakeParser:
    def __init__(self, directory: Directory, categories: CategoryModel | None = None) -> None:
        self.directory = directory
        self.places = PlaceFinder(directory)
        self.categories = categories or default_model()
        self.calendar = WorkdayCalendar()

    def parse(
        self, text: str, sender_unit: UnitInfo, today: date | None = None, calendar: WorkdayCalendar | None = None
    ) -> Intake:
        """`today` is the message's own date (Asia/Shanghai); without it no deadline is read."""
        text = clean(text)
        place = self.places.place(text, sender_unit)
        risk, suspected = litigation_kind(text).flags
        return Intake(
            township=place.township,
            village=place.village,
            title=title_of(text),
            litigation_risk=risk,
            litigation_suspected=suspected,
            phones=phones_in(text),
            has_id_number=has_id_number(text),
            category=self.categories.classify(self.category_text(text)),
            deadline=deadline_in(text, today, calendar or self.calendar) if today else None,
            ambiguous=tuple(f"{self.directory.get(v.parent_id).name}/{v.name}" for v in place.ambiguous if v.parent_id),
        )

    def category_text(self, text: str) -> str:
        """The cleaned text as the category model reads it, in service and in training: place
        names say nothing about the matter (新宅村 is not about a 宅) and must not score; blanked
        with a mark that is no clause break ("北二反映 老房子漏雨": the space is one)."""
        return self.places.without_places(text, "□")


_PARSERS: dict[int, tuple[weakref.ref[Directory], IntakeParser]] = {}


def parser_for(directory: Directory) -> IntakeParser:
    """One compiled parser per directory object, for as long as that directory lives."""
    entry = _PARSERS.get(id(directory))
    if entry is None or entry[0]() is not directory:
        entry = (weakref.ref(directory), IntakeParser(directory))
        _PARSERS[id(directory)] = entry
    return entry[1]


def parse_submission(
    text: str,
    sender_unit: UnitInfo,
    directory: Directory,
    today: date | None = None,
    calendar: WorkdayCalendar | None = None,
) -> Intake:
    return parser_for(directory).parse(text, sender_unit, today, calendar)
