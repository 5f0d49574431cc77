"""Free-text intake: what a submission says about where, what, risk, contacts, deadline and
title. Pure and fast: no I/O; the unit labels come from the Directory, compiled once."""

from handlers.intake.categories import CATEGORIES, CategoryFileError, CategoryModel
from handlers.intake.parser import JSON_KEYS, Intake, IntakeParser, parse_submission, parser_for
from handlers.intake.risk import litigation_risk
from handlers.intake.text import clean
from handlers.intake.titles import TITLE_LENGTH, title_of
from models.masking import has_id_number, mask, phones_in

__all__ = [
    "CATEGORIES",
    "JSON_KEYS",
    "TITLE_LENGTH",
    "CategoryFileError",
    "CategoryModel",
    "Intake",
    "IntakeParser",
    "clean",
    "has_id_number",
    "litigation_risk",
    "mask",
    "parse_submission",
    "parser_for",
    "phones_in",
    "title_of",
]
