"""What DingTalk's contacts say should change in the people table: one `Change` per person.

Which DingTalk department is which unit: the org file's `dingtalk_dept: <id>` first; a
department the file does not map is matched by its exact name to the one unit of that name
(never by alias, never when two units share the name: two villages called 新村 must be mapped by
id). A person is placed in the first of their departments that is a unit.

- Listed in the org file (or changed by an admin in chat): the file's role and unit stand;
  DingTalk only decides whether they are still here.
- Only DingTalk lists them, in a mapped department: they get the default role of the unit's
  kind (DEFAULT_ROLES), follow DingTalk when they move and when they are renamed. A district
  unit has no default role (its people are leads, and leads are named in the file).
- No longer listed anywhere (or, for DingTalk's own people, no longer in a mapped department):
  left, inactive, without any right; they come back (rejoined) when listed again."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from sqlmodel import Session, select

from bot.contacts.api import Dept, Snapshot, User
from bot.org import Org
from models.directory import Directory, UnitInfo
from models.masking import mask
from models.tables import Person, Unit
from models.vocabulary import ROLE_NAMES, Role, UnitKind

DINGTALK = "dingtalk"  # Person.source of someone only DingTalk lists
DEFAULT_ROLES: dict[str, Role] = {
    UnitKind.VILLAGE: Role.VILLAGE_STAFF,
    UnitKind.TOWNSHIP: Role.TOWNSHIP_STAFF,
    UnitKind.DEPARTMENT: Role.DEPARTMENT,
}
KIND_WORDS = {"added": "新增", "moved": "调动", "renamed": "改名", "left": "离开", "rejoined": "回归"}


@dataclass(frozen=True)
class Change:
    kind: str  # added | moved | renamed | left | rejoined
    person_id: str
    name: str
    unit_id: int | None = None  # where they are (to be) placed
    old_unit_id: int | None = None
    role: str | None = None
    old_name: str | None = None
    union_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        # dataclasses.asdict deep-copies every field: a first sync records thousands of these.
        return {f: v for f in FIELDS if (v := getattr(self, f)) is not None}

    def line(self, directory: Directory) -> str:
        """One line for `org diff`, names masked as everywhere else."""

        def unit(uid: int | None) -> str:
            return directory.full_name(directory.get(uid)) if uid in directory.units else "—"

        who = f"{mask(self.name)}({self.person_id})"
        role = f" · {ROLE_NAMES.get(self.role, self.role)}" if self.role else ""
        if self.kind == "moved":
            return f"调动 {who}: {unit(self.old_unit_id)} → {unit(self.unit_id)}{role}"
        if self.kind == "renamed":
            return f"改名 {mask(self.old_name or '')} → {who}"
        if self.kind == "left":
            return f"离开 {who}: {unit(self.old_unit_id)},即刻失去全部权限"
        return f"{KIND_WORDS[self.kind]} {who}: {unit(self.unit_id)}{role}"


FIELDS = tuple(f.name for f in fields(Change))


def db_unit_ids(session: Session, org: Org) -> dict[int, int]:
    """The org file's provisional unit ids → the database's (units are matched by parent and
    name, as bot.org.sync_org writes them)."""
    rows = {(u.parent_id, u.name): u.id for u in session.exec(select(Unit)).all()}
    ids: dict[int, int] = {}
    for info in org.units:  # parents first
        found = rows.get((ids.get(info.parent_id) if info.parent_id else None, info.name))
        if found is not None:
            ids[info.id] = found
    return ids


def dept_units(org: Org, ids: dict[int, int], directory: Directory, depts: dict[int, Dept]) -> dict[int, UnitInfo]:
    """DingTalk dept_id → unit: the file's mapping, then exact and unique names."""
    mapped = {d: directory.get(ids[u]) for d, u in org.dingtalk_depts.items() if u in ids}
    taken = {u.id for u in mapped.values()}
    by_name: dict[str, list[UnitInfo]] = {}
    for u in directory.units.values():
        by_name.setdefault(u.name, []).append(u)
    for dept in depts.values():
        if dept.id in mapped or not dept.name:
            continue
        same = by_name.get(dept.name, [])
        if len(same) == 1 and same[0].id not in taken:
            mapped[dept.id] = same[0]
            taken.add(same[0].id)
    return mapped


def place(user: User, units: dict[int, UnitInfo]) -> UnitInfo | None:
    return next((units[d] for d in user.dept_ids if d in units), None)


def change_for(person: Person | None, user: User | None, unit: UnitInfo | None) -> Change | None:
    """What one person's listing (None: not listed) changes; None when nothing."""
    if user is None:
        if person is None or not person.active:
            return None
        return Change("left", person.id, person.name, old_unit_id=person.unit_id)
    role = DEFAULT_ROLES.get(unit.kind) if unit else None
    if person is None:
        if unit is None or role is None:
            return None  # not in any unit this bot serves
        return Change("added", user.userid, user.name, unit.id, role=role, union_id=user.unionid)
    ours = person.source == DINGTALK
    if ours and (unit is None or role is None):
        if not person.active:
            return None
        return Change("left", person.id, person.name, old_unit_id=person.unit_id)
    if not person.active:
        if ours and unit is not None:
            return Change("rejoined", person.id, user.name, unit.id, person.unit_id, role, union_id=user.unionid)
        return Change("rejoined", person.id, person.name, person.unit_id, role=person.role)
    if ours and unit is not None and unit.id != person.unit_id:
        return Change("moved", person.id, user.name, unit.id, person.unit_id, role, union_id=user.unionid)
    if ours and user.name and user.name != person.name:
        return Change("renamed", person.id, user.name, person.unit_id, old_name=person.name)
    return None


def plan(session: Session, org: Org, snap: Snapshot) -> list[Change]:
    """Every change a sync would make, in person-id order."""
    ids = db_unit_ids(session, org)
    units = dept_units(org, ids, Directory.load(session), snap.depts)
    people = {p.id: p for p in session.exec(select(Person)).all()}
    changes = []
    for pid in sorted(set(people) | set(snap.users)):
        user = snap.users.get(pid)
        change = change_for(people.get(pid), user, place(user, units) if user else None)
        if change is not None:
            changes.append(change)
    return changes
