"""One canonical form of a chat post for every intake rule, so that full-width digits, emoji,
control characters and lone surrogates never reach a pattern (or a JSON encoder)."""

from __future__ import annotations

import re
import unicodedata

# Emoji and pictographs are removed outright: between two words they are decoration, not a break.
_EMOJI = re.compile(
    "[\U0001f000-\U0001faff\U0001fc00-\U0001fffd\u2300-\u23ff\u2600-\u27bf\u2b00-\u2bff"
    "\u3030\u303d\u3297\u3299\ufe00-\ufe0f\u200d\u20e3]"
)
# Control characters, lone surrogates, invisible format characters: a space, so words stay apart.
_NOISE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff\u200b\u200c\u200e\u200f\u2028-\u202e\u2060-\u206f\ufeff]"
)
_SPACES = re.compile(r"[ \t\u3000]+")


def clean(text: str) -> str:
    """NFKC (１３８ → 138, ： → :, （ → (), line breaks kept as \\n, no emoji, no control
    characters, no surrogates, runs of spaces collapsed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _NOISE.sub(" ", _EMOJI.sub("", text))
    text = unicodedata.normalize("NFKC", text)
    return _SPACES.sub(" ", text).strip()
