"""Free-text intake: what a submission says about where, what, risk, contacts and title.
Pure and fast: no I/O; the unit labels come from the Directory built once per process."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from models.directory import AmbiguousUnit, Directory, UnitInfo

_MOBILE = re.compile(r"(?<!\d)(?:\+?86[\s-]?)?(1[3-9]\d)[\s-]?(\d{4})[\s-]?(\d{4})(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)(0\d{2,3})[\s-]?(\d{7,8})(?!\d)")
_ID_NUMBER = re.compile(r"(?<![\dA-Za-z])(\d{17}[\dXx])(?![\dA-Za-z])")
_RISK = re.compile(r"行政诉讼|行政复议|起诉|打官司|败诉|上访|信访|闹访|诉讼")
_NEGATED = re.compile(r"(?:无|没有|不存在|暂无|未|已撤)[^,。;,;]{0,6}$")
_TITLE_MARK = re.compile(r"(?:问题描述|问题|反映)[:：]?")
TITLE_LENGTH = 30


@dataclass(frozen=True)
class Intake:
    township: UnitInfo | None
    village: UnitInfo | None
    title: str
    litigation_risk: bool
    phones: list[str] = field(default_factory=list)
    has_id_number: bool = False
    category: str = "其他"


def phones_in(text: str) -> list[str]:
    found = ["".join(m.groups()) for m in _MOBILE.finditer(text)]
    found += ["".join(m.groups()) for m in _LANDLINE.finditer(_MOBILE.sub(" ", text))]
    return list(dict.fromkeys(found))


def has_id_number(text: str) -> bool:
    return any(_id_checksum_ok(m.group(1)) for m in _ID_NUMBER.finditer(text))


def _id_checksum_ok(number: str) -> bool:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(number[:17], weights, strict=True))
    return "10X98765432"[total % 11] == number[17].upper()


def mask(text: str) -> str:
    """Phones as 138****0000, ID numbers hidden: for every group message and every log line."""
    text = _ID_NUMBER.sub(lambda m: "[身份证号已隐藏]" if _id_checksum_ok(m.group(1)) else m.group(0), text)
    text = _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
    return _LANDLINE.sub(lambda m: f"{m.group(1)}-****{m.group(2)[-4:]}", text)


def litigation_risk(text: str) -> bool:
    return any(not _NEGATED.search(text[: m.start()]) for m in _RISK.finditer(text))


def title_of(text: str) -> str:
    """One scannable line: the 问题/反映 part where marked, cut at a sentence or clause end."""
    mark = _TITLE_MARK.search(text)
    body = text[mark.end() :] if mark and mark.end() < len(text) else text
    sentence = re.split(r"[\n。!?!?;;]", mask(body).strip(), maxsplit=1)[0].strip(" ,:")
    title = ""
    for clause in re.split(r"(?<=[,,、])", sentence):
        if title and len(title) + len(clause) > TITLE_LENGTH:
            break
        title += clause
    return title.rstrip(",、 ")[:TITLE_LENGTH] or "(无标题)"


def parse_submission(text: str, sender_unit: UnitInfo, directory: Directory) -> Intake:
    township = directory.township_of(sender_unit)
    village = sender_unit if sender_unit.kind == "village" else None
    if village is None:  # a township or district sender may name the place
        named = _named_units(text, directory)
        if township is None:
            township = next((u for u in named if u.kind == "township"), None)
        villages = list(
            dict.fromkeys(u for u in named if u.kind == "village" and (township is None or u.parent_id == township.id))
        )
        if len(villages) == 1 or (villages and township is not None):
            village, township = villages[0], directory.township_of(villages[0])
    return Intake(
        township=township,
        village=village,
        title=title_of(text),
        litigation_risk=litigation_risk(text),
        phones=phones_in(text),
        has_id_number=has_id_number(text),
    )


def _named_units(text: str, directory: Directory) -> list[UnitInfo]:
    """Units whose name or alias occurs in the text, longest label first."""
    hits: list[UnitInfo] = []
    for label in sorted(directory.labels(), key=len, reverse=True):
        if len(label) >= 2 and label in text:
            try:
                unit = directory.resolve(label)
            except AmbiguousUnit as e:
                hits.extend(e.candidates)
                continue
            if unit:
                hits.append(unit)
    return hits
