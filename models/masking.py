"""Phone and ID-card numbers: found, and hidden in every group message and log line.

The patterns accept full-width digits and dashes themselves (rather than relying on NFKC)
because `mask` must work on any raw string, e.g. a log line, and change nothing else in it."""

from __future__ import annotations

import re
from datetime import date

_D = "[0-9０-９]"
_SEP = "[ \u3000\\-－—–]?"
_FULL_WIDTH = str.maketrans("０１２３４５６７８９ｘＸ", "0123456789xX")

# Written 138 0000 1234, 138-0000-1234, 138.0000.1234 or whole, with or without +86.
_MOBILE_SEP = "[ \u3000\\-－—–.．]?"
_MOBILE = re.compile(
    rf"(?<![0-9０-９])(?:[+＋]?[8８][6６]{_SEP}|[(（][+＋]?[8８][6６][)）]{_SEP})?"
    rf"([1１][3-9３-９]{_D}){_MOBILE_SEP}({_D}{{4}}){_MOBILE_SEP}({_D}{{4}})(?![0-9０-９])"
)
# A landline needs its area code (0570-3012345); a local number starts with 2-9.
_LANDLINE = re.compile(rf"(?<![0-9０-９])[(（]?([0０]{_D}{{2,3}})[)）]?{_SEP}([2-9２-９]{_D}{{6,7}})(?![0-9０-９])")
_ID_NUMBER = re.compile(rf"(?<![0-9０-９A-Za-zＡ-Ｚａ-ｚ])({_D}{{17}}[0-9０-９XxＸｘ])(?![0-9０-９A-Za-zＡ-Ｚａ-ｚ])")
# What masking hides is wider than what counts as an ID number: any 18- or 15-digit run shaped
# like one (area code, a birth date that exists, sequence), grouped by spaces or dashes or not,
# right after letters (身份证ID3308…) or not, whatever its check digit — a typo'd ID is still one.
# (Not right after an X: that is the check digit of the ID before it, and masking is idempotent.)
_ID_SEP = "[ \u3000\\-－]?"
_ID_LIKE = re.compile(
    rf"(?<![0-9０-９XxＸｘ])({_D}{{6}}){_ID_SEP}({_D}{{8}}){_ID_SEP}({_D}{{3}}[0-9０-９XxＸｘ])(?![0-9０-９XxＸｘ])"
    rf"|(?<![0-9０-９XxＸｘ])({_D}{{6}}){_ID_SEP}({_D}{{6}}){_ID_SEP}({_D}{{3}})(?![0-9０-９XxＸｘ])"
)
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)  # GB 11643


def _ascii(digits: str) -> str:
    return digits.translate(_FULL_WIDTH)


def _id_checksum_ok(number: str) -> bool:
    number = _ascii(number)
    total = sum(int(d) * w for d, w in zip(number[:17], _WEIGHTS, strict=True))
    return "10X98765432"[total % 11] == number[17].upper()


def phones_in(text: str) -> list[str]:
    """Every mobile and landline, digits only, in the order they are written, each once."""
    found = [(m.start(), _ascii("".join(m.groups()))) for m in _MOBILE.finditer(text)]
    without_mobiles = _MOBILE.sub(lambda m: " " * len(m.group(0)), text)  # same offsets
    found += [(m.start(), _ascii("".join(m.groups()))) for m in _LANDLINE.finditer(without_mobiles)]
    return list(dict.fromkeys(number for _, number in sorted(found)))


def has_id_number(text: str) -> bool:
    return any(_id_checksum_ok(m.group(1)) for m in _ID_NUMBER.finditer(text))


def _birth_date_ok(yyyymmdd: str) -> bool:
    try:
        born = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return False
    return 1880 <= born.year <= 2100


def _id_like(m: re.Match[str]) -> str:
    if m.group(1) is not None:  # 18 digits: the birth date is YYYYMMDD
        shaped = _birth_date_ok(_ascii(m.group(2)))
        valid = _id_checksum_ok(m.group(1) + m.group(2) + m.group(3))
    else:  # 15 digits (issued before 1999): YYMMDD
        shaped, valid = _birth_date_ok("19" + _ascii(m.group(5))), False
    return "[身份证号已隐藏]" if shaped or valid else m.group(0)


def mask(text: str) -> str:
    """Phones as 138****0000, ID numbers hidden: for every group message and every log line."""
    text = _ID_LIKE.sub(_id_like, text)
    text = _MOBILE.sub(lambda m: f"{_ascii(m.group(1))}****{_ascii(m.group(3))}", text)
    return _LANDLINE.sub(lambda m: f"{_ascii(m.group(1))}-****{_ascii(m.group(2))[-4:]}", text)
