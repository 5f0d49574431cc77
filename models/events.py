"""The kinds of event an issue's timeline holds, as data: the name stored, the label every
timeline shows, whether it moves the issue's status (the district 化解 count looks at the last
of those), and the payload it carries. `models.lifecycle.record` refuses a payload that does not
fit its kind, so a handler and the projection cannot drift apart."""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NotRequired, TypedDict


class Kind(StrEnum):
    CREATED = "created"
    ESCALATED = "escalated"
    REVIEWED = "reviewed"
    ASSIGNED = "assigned"
    FEEDBACK = "feedback"
    RESOLVED = "resolved"
    RETURNED = "returned"
    REOPENED = "reopened"
    EXTENSION_REQUESTED = "extension_requested"
    EXTENSION_APPROVED = "extension_approved"
    EXTENSION_REJECTED = "extension_rejected"
    MERGED = "merged"
    CLOSED = "closed"
    SUPERVISED = "supervised"
    AMENDED = "amended"
    PICTURE = "picture"
    PHOTO_KEPT = "photo_kept"
    PHOTO_LOST = "photo_lost"


class Created(TypedDict):
    title: str
    text: str
    level: str
    unit_id: int
    township_id: int | None
    village_id: int | None
    category: str
    litigation_risk: bool
    litigation_suspected: NotRequired[bool]  # absent in events from before 疑似 existed
    phones: list[str]
    has_id_number: bool
    requested_deadline: str | None
    reporter_id: str
    source_msg_id: str
    conversation_id: str


class Moved(TypedDict):  # escalated (up) and returned (down)
    from_level: str
    to_level: str
    unit_id: int
    reason: str


class Reviewed(TypedDict):
    opinion: str
    risk: str | None
    litigation_risk: bool
    litigation_cleared: NotRequired[bool]  # the 研判 says there is none: 否, whatever intake said


class Assigned(TypedDict):
    owner_id: str
    department_id: int | None
    deadline: str | None
    tuesday: bool  # tagged 周二无会日 in the text (the event's own flag also counts the weekday)


class Feedback(TypedDict):
    text: str


class Resolved(TypedDict):
    result: str


class Reopened(TypedDict):
    reason: str
    by: str  # lead (重办) | reporter (不满意)


class ExtensionRequested(TypedDict):
    days: int
    workdays: bool
    reason: str


class ExtensionApproved(TypedDict):
    deadline: str
    days: int


class ExtensionRejected(TypedDict):  # 不同意延期: the request is over, the deadline stays
    days: int  # what was asked for
    reason: str


class Merged(TypedDict):
    duplicate: int


class Closed(TypedDict):
    duplicate_of: int


class Supervised(TypedDict):
    reason: NotRequired[str]  # the overdue ladder's automatic 催办


class Amended(TypedDict):
    fields: dict[str, Any]
    text: str


class Picture(TypedDict):
    codes: list[str]  # DingTalk download codes
    after_seq: int  # the 上报 or 反馈 event they are evidence for


class PhotoKept(TypedDict):  # one picture of a `picture` event fetched from DingTalk and stored
    picture_seq: int  # the `picture` event that named its download code
    sha256: str  # the stored file's name and proof of its content (bot.photos_store)
    bytes: int
    content_type: str


class PhotoLost(TypedDict):  # one picture DingTalk would not give us, after the retries
    picture_seq: int
    attempts: int
    reason: str  # a short Chinese line, never DingTalk's raw answer


Payload = (
    Created
    | Moved
    | Reviewed
    | Assigned
    | Feedback
    | Resolved
    | Reopened
    | ExtensionRequested
    | ExtensionApproved
    | ExtensionRejected
    | Merged
    | Closed
    | Supervised
    | Amended
    | Picture
    | PhotoKept
    | PhotoLost
)


@dataclass(frozen=True)
class EventKind:
    kind: Kind
    label: str  # as the timeline shows it
    moves_status: bool
    payload: type[Any]  # a TypedDict

    def check(self, data: dict[str, Any]) -> None:
        """A payload missing a key of its kind, or carrying one it does not know, is a bug."""
        required: frozenset[str] = self.payload.__required_keys__
        known = required | self.payload.__optional_keys__
        missing, unknown = required - data.keys(), data.keys() - known
        if missing or unknown:
            raise ValueError(f"{self.kind} payload: missing {sorted(missing)}, unknown {sorted(unknown)}")


EVENT_KINDS: dict[str, EventKind] = {
    k.kind: k
    for k in (
        EventKind(Kind.CREATED, "登记", True, Created),
        EventKind(Kind.ESCALATED, "上报", True, Moved),
        EventKind(Kind.REVIEWED, "研判", True, Reviewed),
        EventKind(Kind.ASSIGNED, "交办", True, Assigned),
        EventKind(Kind.FEEDBACK, "反馈", False, Feedback),
        EventKind(Kind.RESOLVED, "办结", True, Resolved),
        EventKind(Kind.RETURNED, "退回", True, Moved),
        EventKind(Kind.REOPENED, "重办", True, Reopened),
        EventKind(Kind.EXTENSION_REQUESTED, "申请延期", False, ExtensionRequested),
        EventKind(Kind.EXTENSION_APPROVED, "同意延期", False, ExtensionApproved),
        EventKind(Kind.EXTENSION_REJECTED, "不同意延期", False, ExtensionRejected),
        EventKind(Kind.MERGED, "并入重复件", False, Merged),
        EventKind(Kind.CLOSED, "作为重复件合并", True, Closed),
        EventKind(Kind.SUPERVISED, "督办", False, Supervised),
        EventKind(Kind.AMENDED, "更正", False, Amended),
        EventKind(Kind.PICTURE, "照片", False, Picture),
        EventKind(Kind.PHOTO_KEPT, "现场照片已保存", False, PhotoKept),
        EventKind(Kind.PHOTO_LOST, "照片未能保存", False, PhotoLost),
    )
}
# Recorded by the photo worker about a file, not by anyone about the case: they leave the
# projection as it is (not even updated_at, which a merged case's export reads as its closing
# time) and so every count (models.facts folds none of them).
FILE_KINDS = frozenset({Kind.PHOTO_KEPT, Kind.PHOTO_LOST})
STATUS_KINDS = tuple(k.kind for k in EVENT_KINDS.values() if k.moves_status)
EVENT_NAMES: dict[str, str] = {k.kind: k.label for k in EVENT_KINDS.values()}
