"""The ledger (台账): one row per issue, as .xlsx (real date cells, frozen header, fitting
widths) and as .csv (UTF-8 with a BOM, so Excel reads the Chinese right). Masked like every
other output."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, overload

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from sqlalchemy import and_, case, select, type_coerce
from sqlmodel import Session

from bot.web.params import IssueQuery
from bot.web.reads import clauses
from bot.web.views import Names
from models.clock import SHANGHAI
from models.directory import UnitInfo
from models.facts import F, Fact
from models.masking import mask
from models.rules import days_overdue
from models.tables import Issue, IssueEvent
from models.vocabulary import LEVEL_NAMES, STATUS_NAMES, Litigation, Status

# (header, kind): kind decides the cell type in .xlsx and the text form in .csv.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("编号", "int"),
    ("标题", "text"),
    ("乡镇(街道)", "text"),
    ("村(社区)", "text"),
    ("当前单位", "text"),
    ("类别", "text"),
    ("风险等级", "text"),
    ("行政败诉风险", "text"),
    ("层级", "text"),
    ("状态", "text"),
    ("上报人", "text"),
    ("包案人", "text"),
    ("责任部门", "text"),
    ("登记时间", "datetime"),
    ("截止日期", "date"),
    ("办结时间", "datetime"),
    ("办理天数", "int"),
    ("逾期天数", "int"),
    ("办结层级", "text"),
    ("首次区级交办", "datetime"),
    ("周二无会日", "text"),
    ("交办包案人", "text"),
    ("问题描述", "text"),
    ("联系电话", "text"),
    ("办理结果", "text"),
)
HEADERS = tuple(h for h, _ in COLUMNS)
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_TYPE = "text/csv"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
DATE_FORMAT = "yyyy-mm-dd"
MAX_WIDTH = 60
# Spreadsheet programs run a cell that starts with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

Row = tuple[Any, ...]


@overload
def _wall(dt: datetime) -> datetime: ...
@overload
def _wall(dt: None) -> None: ...
def _wall(dt: datetime | None) -> datetime | None:
    """Shanghai wall time without a zone: spreadsheet cells have no time zones."""
    return dt.astimezone(SHANGHAI).replace(tzinfo=None, microsecond=0) if dt else None


def ledger_rows(session: Session, scope: UnitInfo, query: IssueQuery, names: Names, today: date) -> list[Row]:
    """Plain rows, oldest first. Written for 100,000 issues: Core rows unpacked by position,
    names from dicts, and the closing time of merged duplicates fetched only for them."""
    t = Issue.__table__.c  # type: ignore[attr-defined]
    closed_at = type_coerce(case((t.status == "closed", t.updated_at)), t.updated_at.type)
    columns: tuple[Any, ...] = (
        t.id,
        t.title,
        t.township_id,
        t.village_id,
        t.unit_id,
        t.category,
        t.risk,
        t.litigation_risk,
        t.litigation_suspected,
        t.level,
    )
    columns += (t.status, t.reporter_id, t.owner_id, t.department_id, t.created_at, t.deadline, t.resolved_at)
    columns += (closed_at, t.text, t.phones, t.result)
    where = clauses(scope, query, today)
    query_ = select(*columns).where(*where).order_by(t.id)
    first_assigned = _district_assignments(session, where)
    units = {u.id: u.name for u in names.directory.units.values()}
    people = names.people
    rows: list[Row] = []
    for (
        iid,
        title,
        tid,
        vid,
        uid,
        cat,
        risk,
        lit,
        suspected,
        level,
        status,
        rep,
        own,
        dept,
        created,
        dl,
        res,
        closed,
        text,
        phones,
        out,
    ) in session.connection().execute(query_):
        created_wall, resolved_wall = _wall(created), _wall(res)
        ended = resolved_wall or _wall(closed)
        open_days = max(((ended.date() if ended else today) - created_wall.date()).days, 0)
        assigned_at, tue, assignee = first_assigned.get(iid, (None, None, None))
        rows.append(
            (
                iid,
                mask(title),
                units.get(tid),
                units.get(vid),
                units.get(uid),
                cat,
                risk,
                Litigation.of(lit, suspected).value,
                LEVEL_NAMES[level],
                STATUS_NAMES[status],
                people.get(rep, rep),
                people.get(own, own) if own else None,
                units.get(dept),
                created_wall,
                dl,
                resolved_wall,
                open_days,
                days_overdue(status, dl, today),
                LEVEL_NAMES[level] if status == Status.RESOLVED else None,
                _wall(assigned_at),
                None if tue is None else "是" if tue else "否",
                people.get(assignee, assignee) if assignee else None,
                mask(text) if text else None,
                "、".join(mask(p) for p in phones) if phones else None,
                mask(out) if out else None,
            )
        )
    return rows


def _district_assignments(session: Session, where: Sequence[Any]) -> dict[int, tuple[datetime, bool, str | None]]:
    """Per issue of the ledger, its first district 交办 as the counts keep it (models.facts): the
    time, the 周二无会日 flag and the 包案人 it named. These explain the 区级 counts and survive a
    退回 or a later 交办, which change the issue's own owner and tag."""
    issues, events = Issue.__table__, IssueEvent.__table__  # type: ignore[attr-defined]
    e = events.c
    q = (
        select(F.c.issue_id, F.c.at, F.c.tuesday, e.data)
        .select_from(
            F.join(events, and_(e.issue_id == F.c.issue_id, e.seq == F.c.seq)).join(issues, issues.c.id == F.c.issue_id)
        )
        .where(F.c.kind == Fact.DISTRICT_ASSIGNED, *where)
    )
    return {
        iid: (at, bool(tue), (data or {}).get("owner_id")) for iid, at, tue, data in session.connection().execute(q)
    }


def display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def column_widths(rows: Sequence[Row]) -> list[float]:
    """Widths that fit the longest value of each column (CJK counts double), capped."""
    widths: list[float] = []
    for i, (header, kind) in enumerate(COLUMNS):
        best = display_width(header)
        if kind == "datetime":
            best = max(best, 16)
        elif kind == "date":
            best = max(best, 10)
        else:
            values = sorted((str(r[i]) for r in rows if r[i] is not None), key=len, reverse=True)
            for v in values:  # longest first: once 2×len cannot beat the best, nothing later can
                if 2 * len(v) <= best:
                    break
                best = max(best, display_width(v))
        widths.append(min(best, MAX_WIDTH) + 2)
    return widths


def to_xlsx(rows: Sequence[Row], title: str = "台账") -> bytes:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title)
    for i, width in enumerate(column_widths(rows), start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(COLUMNS))}{len(rows) + 1}"
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
    header = []
    for name in HEADERS:
        cell = WriteOnlyCell(ws, name)
        cell.font, cell.fill, cell.alignment = bold, fill, Alignment(horizontal="center")
        header.append(cell)
    ws.append(header)
    dt_cols = [i for i, (_, kind) in enumerate(COLUMNS) if kind == "datetime"]
    for row in rows:
        out: list[Any] = list(row)
        for i in dt_cols:
            if out[i] is not None:
                cell = WriteOnlyCell(ws, out[i])
                cell.number_format = DATETIME_FORMAT
                out[i] = cell
        for i, value in enumerate(out):
            if isinstance(value, str) and value.startswith("="):  # text, never a formula
                cell = WriteOnlyCell(ws, value)
                cell.data_type = "s"
                out[i] = cell
        ws.append(out)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _csv_text(value: Any, kind: str) -> str:
    if value is None:
        return ""
    if kind == "datetime":
        return value.strftime("%Y-%m-%d %H:%M")
    if kind == "date":
        return value.isoformat()
    text = str(value)
    return "'" + text if kind == "text" and text.startswith(_FORMULA_START) else text


def to_csv(rows: Sequence[Row]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(HEADERS)
    kinds = [kind for _, kind in COLUMNS]
    writer.writerows([_csv_text(v, k) for v, k in zip(row, kinds, strict=True)] for row in rows)
    return buf.getvalue().encode("utf-8-sig")


def filename(unit: UnitInfo, today: date, ext: str) -> str:
    return f"两难问题台账-{unit.name}-{today.isoformat()}.{ext}"
