"""The §2 counts kept as they happen: each event an issue records may add or adjust its rows in
`count_facts` (models.tables.CountFact), in the same transaction (`follow`, called by
models.lifecycle.record, the one writer of events). `facts_of` derives the same rows from an
issue's whole timeline: verify rebuilds them with it and reports any drift.

Reading the rows (models.counts) then costs what the period costs: every count is an indexed
range of `at`, in the scope's own index."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlmodel import Session

from models.clock import local
from models.events import STATUS_KINDS, Kind
from models.queries import events_of
from models.tables import CountFact
from models.vocabulary import Level, Status

F = CountFact.__table__  # type: ignore[attr-defined]
C = F.c
MOVES = frozenset(STATUS_KINDS)


class Fact(StrEnum):
    VILLAGE_ENTERED = "village_entered"  # 村 排摸: created at village level
    TOWNSHIP_ENTERED = "township_entered"  # 乡镇 提交: first entered township level
    DISTRICT_ASSIGNED = "district_assigned"  # 区 交办: first assigned at district level
    VILLAGE_RESOLVED = "village_resolved"  # each 办结 at village level
    TOWNSHIP_RESOLVED = "township_resolved"  # each 办结 at township level
    DISTRICT_RESOLVED = "district_resolved"  # each 化解 at district level, valid [at, until)


RESOLVED_AT = {
    Level.VILLAGE: Fact.VILLAGE_RESOLVED,
    Level.TOWNSHIP: Fact.TOWNSHIP_RESOLVED,
    Level.DISTRICT: Fact.DISTRICT_RESOLVED,
}
SCOPE_COLUMNS = ("township_id", "village_id", "department_id")


@dataclass(frozen=True)
class Before:
    """What of the issue the rows depend on, taken before an event is applied."""

    status: str
    township_id: int | None
    village_id: int | None
    department_id: int | None

    @classmethod
    def of(cls, issue: Any) -> Before:
        return cls(issue.status, issue.township_id, issue.village_id, issue.department_id)

    def scope(self) -> tuple[int | None, int | None, int | None]:
        return (self.township_id, self.village_id, self.department_id)


def _scope(issue: Any) -> dict[str, int | None]:
    return {name: getattr(issue, name) for name in SCOPE_COLUMNS}


RESOLUTIONS = frozenset(RESOLVED_AT.values())
BELOW_DISTRICT = frozenset((Fact.VILLAGE_RESOLVED, Fact.TOWNSHIP_RESOLVED))


def _row(issue: Any, kind: Fact, ev: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "issue_id": issue.id,
        "kind": kind.value,
        "seq": ev["seq"],
        "at": ev["at"],
        "prev_at": None,
        "until": None,
        "prior_at": None,
        "tuesday": False,
        **_scope(issue),
        **extra,
    }


def follow(session: Session, issue: Any, before: Before | None, ev: dict[str, Any]) -> None:
    """Fold one recorded event (its row as inserted: issue_id, seq, kind, at, level, tuesday)
    into the issue's count rows. `before` is None for the issue's first event."""
    kind, level, at = ev["kind"], ev["level"], ev["at"]
    issue_id = issue.id
    if issue.status == Status.CLOSED:  # merged away: in no count
        if before is not None and before.status != Status.CLOSED:
            session.execute(delete(F).where(C.issue_id == issue_id))
        return
    if before is not None and before.status == Status.CLOSED:  # no verb leaves 合并; rebuild if one does
        rebuild_issue(session, issue)
        return
    if before is not None and before.scope() != (issue.township_id, issue.village_id, issue.department_id):
        session.execute(update(F).where(C.issue_id == issue_id).values(**_scope(issue)))
    if kind in MOVES and before is not None:
        # A later status change ends an earlier district resolution (the earliest one wins).
        session.execute(
            update(F)
            .where(C.issue_id == issue_id, C.kind == Fact.DISTRICT_RESOLVED, or_(C.until.is_(None), C.until > at))
            .values(until=at)
        )
    rows: list[dict[str, Any]] = []
    if kind == Kind.CREATED:
        if level == Level.VILLAGE:
            rows.append(_row(issue, Fact.VILLAGE_ENTERED, ev))
        elif level == Level.TOWNSHIP:
            rows.append(_row(issue, Fact.TOWNSHIP_ENTERED, ev))
    elif kind == Kind.ESCALATED and level == Level.TOWNSHIP:
        first = _existing(session, issue_id, Fact.TOWNSHIP_ENTERED)
        if not first:
            rows.append(_row(issue, Fact.TOWNSHIP_ENTERED, ev))
        elif at < first[0][1]:  # an earlier createAt than the entry seen so far
            session.execute(update(F).where(C.id == first[0][0]).values(at=at, seq=ev["seq"]))
    elif kind == Kind.ASSIGNED and level == Level.DISTRICT:
        if not _existing(session, issue_id, Fact.DISTRICT_ASSIGNED):
            tuesday = bool(ev["tuesday"])
            rows.append(_row(issue, Fact.DISTRICT_ASSIGNED, ev, tuesday=tuesday))
            # A district resolution recorded before any district assignment now belongs to it.
            session.execute(
                update(F)
                .where(C.issue_id == issue_id, C.kind == Fact.DISTRICT_RESOLVED)
                .values(prev_at=at, tuesday=tuesday)
            )
    elif kind == Kind.RESOLVED and level in RESOLVED_AT:
        fact = RESOLVED_AT[level]
        if fact == Fact.DISTRICT_RESOLVED:
            # It carries the first district assignment (its time and 周二无会日 flag), so the
            # 化解 count of P reads these rows alone.
            assigned = session.execute(
                select(C.at, C.tuesday).where(C.issue_id == issue_id, C.kind == Fact.DISTRICT_ASSIGNED)
            ).first()
            assignment: dict[str, Any] = {"prev_at": assigned[0], "tuesday": bool(assigned[1])} if assigned else {}
            rows.append(_row(issue, fact, ev, **assignment))
        else:
            # Place it among the issue's resolutions at this level in time order: it follows the
            # latest at or before it, and the first after it (if any, out of order) follows it.
            earlier = _existing(session, issue_id, fact)  # in time order
            before_it = [a for _, a in earlier if a <= at]
            after_it = [i for i, a in earlier if a > at]
            rows.append(_row(issue, fact, ev, prev_at=before_it[-1] if before_it else None))
            if after_it:
                session.execute(update(F).where(C.id == after_it[0]).values(prev_at=at))
    if rows:
        session.execute(insert(F), rows)
    if kind == Kind.RESOLVED:
        _relink(session, issue_id)


def priors(rows: Iterable[tuple[Any, str, datetime, int]]) -> dict[Any, datetime | None]:
    """Each resolution's prior_at (key → time), from (key, kind, at, seq) of one issue's
    resolution rows: the latest 办结 below the district strictly before it in (at, seq) order."""
    out: dict[Any, datetime | None] = {}
    latest: datetime | None = None
    for key, kind, at, _seq in sorted(rows, key=lambda r: (r[2], r[3])):
        out[key] = latest
        if kind in BELOW_DISTRICT:
            latest = at
    return out


def _relink(session: Session, issue_id: int) -> None:
    """Set prior_at on the issue's resolutions after one is added (one may arrive out of order)."""
    q = select(C.id, C.kind, C.at, C.seq, C.prior_at).where(C.issue_id == issue_id, C.kind.in_(RESOLUTIONS))
    found = session.execute(q).all()
    want = priors((i, k, a, s) for i, k, a, s, _p in found)
    for i, _k, _a, _s, have in found:
        if not _same_time(have, want[i]):
            session.execute(update(F).where(C.id == i).values(prior_at=want[i]))


def _same_time(a: datetime | None, b: datetime | None) -> bool:
    return (a is None) == (b is None) and (a is None or b is None or local(a) == local(b))


def _existing(session: Session, issue_id: int, kind: Fact) -> list[tuple[int, datetime]]:
    q = select(C.id, C.at).where(C.issue_id == issue_id, C.kind == kind.value).order_by(C.at, C.seq)
    return [(i, a) for i, a in session.execute(q).all()]


def facts_of(issue: Any, events: Sequence[Any]) -> list[dict[str, Any]]:
    """The rows an issue's whole timeline gives (events in seq order, `issue` its projection
    now): what `follow` keeps, event by event."""
    if not events or issue.status == Status.CLOSED:
        return []
    ev = [(e.seq, e.kind, e.level, e.at, e.tuesday) for e in events]
    rows: list[dict[str, Any]] = []
    at_of = {s: a for s, _k, _lv, a, _t in ev}

    def fact(kind: Fact, seq: int, **extra: Any) -> dict[str, Any]:
        return _row(issue, kind, {"seq": seq, "at": at_of[seq]}, **extra)

    created = ev[0]
    if created[1] == Kind.CREATED and created[2] == Level.VILLAGE:
        rows.append(fact(Fact.VILLAGE_ENTERED, created[0]))
    township = [(a, s) for s, k, lv, a, _t in ev if k in (Kind.CREATED, Kind.ESCALATED) and lv == Level.TOWNSHIP]
    if township:
        rows.append(fact(Fact.TOWNSHIP_ENTERED, min(township)[1]))
    assigned = [(s, t) for s, k, lv, _a, t in ev if k == Kind.ASSIGNED and lv == Level.DISTRICT]
    first: dict[str, Any] = {}
    if assigned:
        first = {"prev_at": at_of[assigned[0][0]], "tuesday": bool(assigned[0][1])}
        rows.append(fact(Fact.DISTRICT_ASSIGNED, assigned[0][0], tuesday=first["tuesday"]))
    for level in (Level.VILLAGE, Level.TOWNSHIP):
        done = sorted((a, s) for s, k, lv, a, _t in ev if k == Kind.RESOLVED and lv == level)
        prev: datetime | None = None
        for _key, seq in done:
            rows.append(fact(RESOLVED_AT[level], seq, prev_at=prev))
            prev = at_of[seq]
    moves = [(s, a) for s, k, _lv, a, _t in ev if k in MOVES]
    for s, k, lv, _a, _t in ev:
        if k == Kind.RESOLVED and lv == Level.DISTRICT:
            later = [a for s2, a in moves if s2 > s]
            rows.append(fact(Fact.DISTRICT_RESOLVED, s, until=min(later) if later else None, **first))
    resolutions = [r for r in rows if r["kind"] in RESOLUTIONS]
    for n, prior in priors((n, r["kind"], r["at"], r["seq"]) for n, r in enumerate(resolutions)).items():
        resolutions[n]["prior_at"] = prior
    return rows


def tuesday_counted(issue: Any, events: Sequence[Any]) -> bool:
    """Whether the issue counts as a 周二无会日办理件: its first district 交办 was one (tagged or
    made on a Tuesday), whatever happened to it since. What every surface that tags it shows."""
    return any(f["kind"] == Fact.DISTRICT_ASSIGNED and f["tuesday"] for f in facts_of(issue, events))


def rebuild_issue(session: Session, issue: Any) -> None:
    session.execute(delete(F).where(C.issue_id == issue.id))
    rows = facts_of(issue, events_of(session, issue.id))
    if rows:
        session.execute(insert(F), rows)


def comparable(rows: Iterable[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Rows as sortable tuples, times in UTC, for comparing what is kept with a rebuild."""

    def t(v: datetime | None) -> str | None:
        return None if v is None else local(v).isoformat()

    return sorted(
        (
            r["kind"],
            r["seq"],
            t(r["at"]),
            t(r["prev_at"]),
            t(r["until"]),
            t(r["prior_at"]),
            bool(r["tuesday"]),
            r["township_id"],
            r["village_id"],
            r["department_id"],
        )
        for r in rows
    )
