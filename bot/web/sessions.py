"""DingTalk login sessions in the database (`web_sessions`), so that every web process behind
one proxy signs the same person in (issue 11), and a restart keeps them. A row holds only the
token's SHA-256: a copy of the database opens nothing. Expiry is the row's `expires_at`, read
against the request's clock; the expired are swept when someone signs in."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlmodel import Session

from bot.web.auth import MAX_TOKEN_LENGTH, token_hash
from models.tables import WebSession

# A DingTalk login lasts a working day: signing in again inside DingTalk costs the person nothing.
SESSION_TTL = timedelta(hours=8)
T = WebSession.__table__  # type: ignore[attr-defined]


def start(session: Session, token: str, person_id: str, now: datetime) -> None:
    """A new session naming the person until SESSION_TTL has passed (in the caller's transaction)."""
    session.execute(delete(T).where(T.c.expires_at <= now))
    session.execute(
        insert(T).values(
            token_sha256=token_hash(token), person_id=person_id, created_at=now, expires_at=now + SESSION_TTL
        )
    )


def person_of(session: Session, token: str | None, now: datetime) -> str | None:
    """Whom a live session's token names, or None (unknown, ended or expired)."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    query = select(T.c.person_id).where(T.c.token_sha256 == token_hash(token), T.c.expires_at > now)
    found: str | None = session.execute(query).scalar()
    return found


def end(session: Session, token: str | None) -> bool:
    """Sign out: the session is gone for every process at once. Whether there was one."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return False
    gone = session.execute(delete(T).where(T.c.token_sha256 == token_hash(token)))
    return bool(gone.rowcount)  # type: ignore[attr-defined]
