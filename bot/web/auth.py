"""Who is asking. A bearer token (or the HttpOnly cookie that a `?token=` dashboard link sets)
names one unit, and the request sees that unit's subtree and nothing else. The org file keeps
only each token's SHA-256, so a leaked org file opens nothing.

A DingTalk login (bot.web.login) sets the same cookie with a session token that names a person,
not a unit: the unit is looked up on every request, so one who leaves the organisation or moves
loses the old scope at once. Those sessions are rows of the database (bot.web.sessions), shared
by every web process."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable

from bot.org import ApiToken
from models.directory import AmbiguousUnit, Directory, UnitInfo

TOKEN_PREFIX = "ld_"
COOKIE = "liandong_token"
MAX_TOKEN_LENGTH = 200  # longer is never ours; hashing megabytes on every request helps no one


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UnknownTokenUnit(LookupError):
    pass


class Tokens:
    """SHA-256 of a token → the unit it is bound to. Lookups hash first, so comparing against
    the stored digests leaks nothing about any token through timing."""

    def __init__(self) -> None:
        self._units: dict[str, UnitInfo] = {}

    @classmethod
    def from_org(cls, api_tokens: Iterable[ApiToken], directory: Directory) -> Tokens:
        tokens = cls()
        for t in api_tokens:
            try:
                unit = directory.resolve(t.unit)
            except AmbiguousUnit:
                unit = None
            if unit is None:  # the org validator already refused this; the database disagrees
                raise UnknownTokenUnit(t.unit)
            tokens._units[t.sha256] = unit
        return tokens

    def add(self, token: str, unit: UnitInfo) -> None:
        """An in-memory token (the sandbox mints one at start; it never reaches a file)."""
        self._units[token_hash(token)] = unit

    def unit_for(self, token: str | None) -> UnitInfo | None:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        return self._units.get(token_hash(token))

    def __len__(self) -> int:
        return len(self._units)


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer …` header; '' for a header of another kind, so a
    wrong header is refused rather than ignored in favour of a cookie."""
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""
