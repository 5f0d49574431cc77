"""One shape of an issue for the API and the dashboard alike (the pages render these dicts).
Every free text goes through mask(): no payload, page or export shows a phone or ID number."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlmodel import Session, col, select

from handlers.replies import event_name, status_name
from models.clock import local
from models.directory import Directory
from models.facts import Fact, tuesday_counted
from models.masking import mask
from models.rules import days_overdue
from models.tables import CountFact, Issue, IssueEvent, Person, PhotoDownload
from models.vocabulary import LEVEL_NAMES


def iso(dt: datetime | None) -> str | None:
    """Shanghai wall time with its offset: what a reader in the district expects to see."""
    return local(dt).isoformat(timespec="seconds") if dt else None


@dataclass(frozen=True)
class Names:
    """Names of the people and units that a set of issues mentions, and which of those issues
    count as 周二无会日办理件 (read from the count facts: as counted, not only as tagged)."""

    directory: Directory
    people: dict[str, str]
    tuesday: frozenset[int] = field(default=frozenset())

    @classmethod
    def load(
        cls,
        session: Session,
        directory: Directory,
        person_ids: Iterable[str | None] = (),
        issues: Iterable[Issue] = (),
    ) -> Names:
        ids = sorted({i for i in person_ids if i})
        rows = session.exec(select(Person.id, Person.name).where(col(Person.id).in_(ids))).all() if ids else []
        numbers = sorted({i.id for i in issues if i.id is not None})
        tuesday = (
            session.exec(
                select(CountFact.issue_id).where(
                    col(CountFact.issue_id).in_(numbers),
                    CountFact.kind == Fact.DISTRICT_ASSIGNED,
                    col(CountFact.tuesday).is_(True),
                )
            ).all()
            if numbers
            else []
        )
        return cls(directory, dict(rows), frozenset(tuesday))

    @classmethod
    def everyone(cls, session: Session, directory: Directory) -> Names:
        return cls(directory, dict(session.exec(select(Person.id, Person.name)).all()))

    def person(self, person_id: str | None) -> str | None:
        return self.people.get(person_id, person_id) if person_id else None

    def unit(self, unit_id: int | None) -> str | None:
        unit = self.directory.units.get(unit_id) if unit_id is not None else None
        return unit.name if unit else None

    def place(self, township_id: int | None, village_id: int | None) -> str:
        return self.directory.place(township_id, village_id)


def people_of(issues: Iterable[Issue]) -> set[str]:
    return {p for i in issues for p in (i.reporter_id, i.owner_id) if p}


def days_open(created_at: datetime, ended_at: datetime | None, today: date) -> int:
    """Calendar days from registration to resolution (or to today while open)."""
    end = local(ended_at).date() if ended_at else today
    return max((end - local(created_at).date()).days, 0)


def summary(issue: Issue, names: Names, today: date) -> dict[str, Any]:
    ended = issue.resolved_at or (issue.updated_at if issue.status == "closed" else None)
    return {
        "id": issue.id,
        "title": mask(issue.title),
        "place": names.place(issue.township_id, issue.village_id),
        "township": names.unit(issue.township_id),
        "village": names.unit(issue.village_id),
        "unit": names.unit(issue.unit_id),
        "level": issue.level,
        "level_name": LEVEL_NAMES[issue.level],
        "status": issue.status,
        "status_name": status_name(issue.status, issue.level),
        "category": issue.category,
        "risk": issue.risk,
        "litigation_risk": issue.litigation_risk,
        "litigation_suspected": issue.litigation_suspected,
        "owner": names.person(issue.owner_id),
        "department": names.unit(issue.department_id),
        "deadline": issue.deadline.isoformat() if issue.deadline else None,
        "overdue_days": days_overdue(issue.status, issue.deadline, today),
        "days_open": days_open(issue.created_at, ended, today),
        "tuesday": issue.id in names.tuesday,
        "created_at": iso(issue.created_at),
        "resolved_at": iso(issue.resolved_at),
    }


def _note(ev: IssueEvent, names: Names) -> str:
    d = ev.data
    if ev.kind in ("escalated", "returned"):
        target = f"至{names.unit(d.get('unit_id')) or LEVEL_NAMES.get(d.get('to_level', ''), '')}"
        return f"{target} · {d['reason']}" if d.get("reason") else target
    if ev.kind == "assigned":
        parts = [f"包案 {names.person(d.get('owner_id'))}", names.unit(d.get("department_id"))]
        parts.append(f"截止 {d['deadline']}" if d.get("deadline") else None)
        parts.append("周二无会日" if ev.tuesday else None)
        return " · ".join(p for p in parts if p)
    if ev.kind == "extension_rejected":  # the deadline stays: only why
        return str(d.get("reason") or "")
    if ev.kind in ("extension_requested", "extension_approved"):
        unit = "个工作日" if d.get("workdays") else "天"
        extra = f"至 {d['deadline']}" if d.get("deadline") else f"{d.get('days')}{unit}"
        return f"{extra} {d.get('reason') or ''}".strip()
    if ev.kind == "closed":
        return f"并入 #{d.get('duplicate_of')}"
    if ev.kind == "merged":
        return f"#{d.get('duplicate')} 并入本件"
    if ev.kind == "picture":
        return f"{len(d.get('codes') or ())} 张照片"
    if ev.kind == "photo_kept":
        return f"SHA-256 {str(d.get('sha256') or '')[:16]}"
    if ev.kind == "photo_lost":
        return f"{d.get('reason') or ''}(已试 {d.get('attempts')} 次)"
    if ev.kind == "created":
        return d.get("title") or ""
    return str(d.get("reason") or d.get("opinion") or d.get("text") or d.get("result") or "")


PHOTO_STATUS_NAMES = {
    "stored": "已保存",
    "pending": "正在从钉钉下载",
    "lost": "未能保存",
    "not_kept": "未保存(早期记录只存了钉钉下载码)",
}


def photo_view(issue_id: int, row: PhotoDownload | None) -> dict[str, Any]:
    """One picture of a timeline event: kept (its sha256 and where to fetch it), being fetched, or
    lost. None stands for a code recorded before pictures were kept. The download code itself
    is DingTalk's temporary token and is never shown."""
    if row is None:
        status, sha, error = "not_kept", None, None
    else:
        status, sha, error = row.status, row.sha256, row.last_error if row.status == "lost" else None
    stored = status == "stored" and sha is not None
    return {
        "status": status,
        "status_name": PHOTO_STATUS_NAMES.get(status, status),
        "sha256": sha if stored else None,
        "bytes": row.size if stored and row else None,
        "content_type": row.content_type if stored and row else None,
        "url": f"/api/issues/{issue_id}/photos/{sha}" if stored else None,
        "thumb_url": None,  # set by the reader that looks at the photo store (bot.web.api)
        "error": error,
    }


def _pictures(ev: IssueEvent, photos: dict[int, list[PhotoDownload]]) -> list[dict[str, Any]]:
    if ev.kind != "picture":
        return []
    rows = photos.get(ev.seq)
    if rows:
        return [photo_view(ev.issue_id, r) for r in rows]
    return [photo_view(ev.issue_id, None) for _ in dict.fromkeys(ev.data.get("codes") or ())]


def event_view(ev: IssueEvent, names: Names, photos: dict[int, list[PhotoDownload]] | None = None) -> dict[str, Any]:
    return {
        "seq": ev.seq,
        "kind": ev.kind,
        "kind_name": event_name(ev.kind, ev.level, ev.data),
        "at": iso(ev.at),
        "actor": names.person(ev.actor_id),
        "level": ev.level,
        "level_name": LEVEL_NAMES[ev.level],
        "unit": names.unit(ev.unit_id),
        "note": mask(_note(ev, names)),
        "tuesday": ev.tuesday,
        "pictures": _pictures(ev, photos or {}),
        "hash": ev.hash,
        "prev_hash": ev.prev_hash,
    }


def detail(
    issue: Issue, events: list[IssueEvent], names: Names, today: date, photos: Iterable[PhotoDownload] = ()
) -> dict[str, Any]:
    by_event: dict[int, list[PhotoDownload]] = {}
    for p in photos:
        by_event.setdefault(p.event_seq, []).append(p)
    return {
        **summary(issue, names, today),
        "tuesday": tuesday_counted(issue, events),  # the whole timeline is here: no count facts needed
        "text": mask(issue.text),
        "phones": [mask(p) for p in issue.phones],
        "has_id_number": issue.has_id_number,
        "reporter": names.person(issue.reporter_id),
        "opinion": mask(issue.opinion) if issue.opinion else None,
        "result": mask(issue.result) if issue.result else None,
        "duplicate_of": issue.duplicate_of,
        "events": [event_view(ev, names, by_event) for ev in events],
    }
