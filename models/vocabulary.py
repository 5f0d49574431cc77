"""The words of the domain, each once: levels, statuses, roles and unit kinds, with the Chinese
every reply, page and export uses for them. Stored as their plain string values."""

from __future__ import annotations

from enum import StrEnum


class Level(StrEnum):
    VILLAGE = "village"
    TOWNSHIP = "township"
    DISTRICT = "district"


class Status(StrEnum):
    SUBMITTED = "submitted"
    REVIEWED = "reviewed"
    ASSIGNED = "assigned"
    RESOLVED = "resolved"
    CLOSED = "closed"  # merged into another issue as its duplicate


class Role(StrEnum):
    VILLAGE_STAFF = "village_staff"
    TOWNSHIP_STAFF = "township_staff"
    TOWNSHIP_LEAD = "township_lead"
    DISTRICT_LEAD = "district_lead"
    DEPARTMENT = "department"
    ADMIN = "admin"


class UnitKind(StrEnum):
    DISTRICT = "district"
    TOWNSHIP = "township"
    VILLAGE = "village"
    DEPARTMENT = "department"


class Litigation(StrEnum):
    """The 行政败诉风险 flag (a suit against the government): stored as two booleans on the issue,
    litigation_risk (是) and litigation_suspected (疑似); never both."""

    YES = "是"
    SUSPECTED = "疑似"
    NO = "否"

    def rank(self) -> int:
        return (Litigation.NO, Litigation.SUSPECTED, Litigation.YES).index(self)

    @property
    def flags(self) -> tuple[bool, bool]:
        """(litigation_risk, litigation_suspected) as stored."""
        return self is Litigation.YES, self is Litigation.SUSPECTED

    @classmethod
    def of(cls, risk: bool, suspected: bool) -> Litigation:
        return cls.YES if risk else cls.SUSPECTED if suspected else cls.NO

    @property
    def label(self) -> str:
        """What replies, notices, pages and exports show; empty for 否."""
        return {"是": "行政败诉风险", "疑似": "疑似行政败诉风险", "否": ""}[self.value]


LEVELS = tuple(Level)
STATUSES = tuple(Status)
OPEN_STATUSES = (Status.SUBMITTED, Status.REVIEWED, Status.ASSIGNED)  # still being worked on
ROLES = tuple(Role)

UP: dict[str, Level] = {Level.VILLAGE: Level.TOWNSHIP, Level.TOWNSHIP: Level.DISTRICT}
DOWN: dict[str, Level] = {Level.DISTRICT: Level.TOWNSHIP, Level.TOWNSHIP: Level.VILLAGE}

LEVEL_NAMES: dict[str, str] = {Level.VILLAGE: "村级", Level.TOWNSHIP: "乡镇(街道)", Level.DISTRICT: "区级"}
STATUS_NAMES: dict[str, str] = {
    Status.SUBMITTED: "已提交",
    Status.REVIEWED: "已研判",
    Status.ASSIGNED: "已交办",
    Status.RESOLVED: "已办结",
    Status.CLOSED: "已合并",
}
ROLE_NAMES: dict[str, str] = {
    Role.VILLAGE_STAFF: "村干部",
    Role.TOWNSHIP_STAFF: "乡镇工作人员",
    Role.TOWNSHIP_LEAD: "乡镇领导",
    Role.DISTRICT_LEAD: "区领导",
    Role.DEPARTMENT: "部门联络员",
    Role.ADMIN: "管理员",
}
# What 角色 accepts besides the names above and the role keys themselves.
ROLE_ALIASES: dict[str, str] = {
    **{v: k for k, v in ROLE_NAMES.items()},
    **{k: k for k in ROLE_NAMES},
    "街道领导": Role.TOWNSHIP_LEAD,
    "街道工作人员": Role.TOWNSHIP_STAFF,
    "网格员": Role.VILLAGE_STAFF,
}
# The unit kind each role belongs to (an admin may sit anywhere).
ROLE_UNIT_KINDS: dict[str, UnitKind] = {
    Role.VILLAGE_STAFF: UnitKind.VILLAGE,
    Role.TOWNSHIP_STAFF: UnitKind.TOWNSHIP,
    Role.TOWNSHIP_LEAD: UnitKind.TOWNSHIP,
    Role.DISTRICT_LEAD: UnitKind.DISTRICT,
    Role.DEPARTMENT: UnitKind.DEPARTMENT,
}
UNIT_KIND_NAMES: dict[str, str] = {
    UnitKind.VILLAGE: "村(社区)",
    UnitKind.TOWNSHIP: "乡镇(街道)",
    UnitKind.DISTRICT: "区",
    UnitKind.DEPARTMENT: "部门",
}
