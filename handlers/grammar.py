"""Text → Command. Normalizes full-width forms and @-mention residue, finds the verb, the
`#N` references and the rest. Knows nothing of permissions or the database; the words it
knows come from the verb table (handlers/verbs.py)."""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
_MENTION = re.compile(r"(?<!\S)@\S+")
_REF = re.compile(r"#\s*(\d{1,40})")  # the whole number as typed (查 # followed by a phone number, too)
_SEPARATORS = " :,;.-、。，：；"
MAX_LENGTH = 4000


@dataclass(frozen=True)
class Command:
    verb: str | None  # canonical verb, None when the text starts with none
    refs: tuple[int, ...]  # every #N in the text, in order
    args: str  # the text after the verb, with #N references removed
    rest: str  # the text after the verb, as written
    text: str  # the whole normalized text


def normalize(text: str) -> str:
    """NFKC (＃１２ → #12, ： → :, 　 → space), no zero-width characters, no @-mention
    residue, trimmed; line breaks kept."""
    # Zero-width characters out first: taken out after NFKC, they would leave pairs NFKC had not
    # composed (e + ZWSP + U+0301 → "é" as two code points), a text a second pass changes.
    text = unicodedata.normalize("NFKC", text.translate(_ZERO_WIDTH))
    text = _MENTION.sub(" ", text)
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.splitlines()]
    return "\n".join(line for line in lines if line).strip()


def take_word(args: str, word: str) -> tuple[bool, str]:
    """Whether `word` stands on its own among the arguments (统计 2020 原文), and the
    arguments without it."""
    parts = args.split()
    if word not in parts:
        return False, args
    return True, " ".join(p for p in parts if p != word)


class Grammar:
    """The parser for one vocabulary: canonical verb → its words (the canonical one first);
    `needs_break` lists words that count only when a break or `#` follows them (改造, 改厕 and
    修改后的… are not 改)."""

    def __init__(self, verbs: Mapping[str, tuple[str, ...]], needs_break: frozenset[str] = frozenset()) -> None:
        self.needs_break = needs_break
        self.aliases = sorted(((a, v) for v, words in verbs.items() for a in words), key=lambda p: -len(p[0]))

    def parse(self, raw: str) -> Command:
        text = normalize(raw)
        refs = tuple(int(n) for n in _REF.findall(text))
        low = text.lower()
        for alias, verb in self.aliases:
            if low.startswith(alias):
                rest = text[len(alias) :]
                if rest and alias.isascii() and alias[-1].isalpha() and rest[0].isalnum():
                    continue  # "helpful" is not "help"
                if rest and alias in self.needs_break and not (rest[0] in _SEPARATORS or rest[0] in "#\n"):
                    continue
                rest = rest.lstrip(_SEPARATORS)
                args = re.sub(r"[ \t]+", " ", _REF.sub(" ", rest)).strip(" " + _SEPARATORS)
                return Command(verb, refs, args, rest, text)
        return Command(None, refs, text, text, text)

    def suggest(self, text: str) -> str | None:
        """The verb the sender probably meant, from the text's first word."""
        head = re.split(r"[\s#:,]", normalize(text), maxsplit=1)[0][:4]
        if not head:
            return None
        best, verb = 0.0, None
        for alias, canonical in self.aliases:
            if alias.isascii():
                continue
            score = difflib.SequenceMatcher(None, head[: len(alias)], alias).ratio() + 0.1 * (head[0] == alias[0])
            if score > best:
                best, verb = score, canonical
        return verb if best >= 0.5 else None
