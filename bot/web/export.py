"""The ledger (台账): one row per issue, as .xlsx (real date cells, frozen header, fitting
widths) and as .csv (UTF-8 with a BOM, so Excel reads the Chinese right). Masked like every
other output."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from sqlmodel import Session, col, select

from bot.web.params import IssueQuery
from bot.web.reads import clauses
from bot.web.views import Names, days_open, overdue_days
from handlers.intake import mask
from handlers.replies import LEVEL_NAMES, STATUS_NAMES
from models.clock import local
from models.directory import UnitInfo
from models.tables import Issue

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
    ("周二无会日", "text"),
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


def _yes(flag: bool) -> str:
    return "是" if flag else "否"


def _naive(dt: datetime | None) -> datetime | None:
    """Shanghai wall time without a zone: spreadsheet cells have no time zones."""
    return local(dt).replace(tzinfo=None, microsecond=0) if dt else None


def ledger_rows(session: Session, scope: UnitInfo, query: IssueQuery, names: Names, today: date) -> list[Row]:
    fields = (
        Issue.id,
        Issue.title,
        Issue.township_id,
        Issue.village_id,
        Issue.unit_id,
        Issue.category,
        Issue.risk,
        Issue.litigation_risk,
        Issue.level,
        Issue.status,
        Issue.reporter_id,
        Issue.owner_id,
        Issue.department_id,
        Issue.created_at,
        Issue.deadline,
        Issue.resolved_at,
        Issue.updated_at,
        Issue.tuesday,
        Issue.phones,
        Issue.result,
    )
    result = session.exec(select(*fields).where(*clauses(scope, query, today)).order_by(col(Issue.id)))
    rows: list[Row] = []
    for r in result:
        ended = r.resolved_at or (r.updated_at if r.status == "closed" else None)
        rows.append(
            (
                r.id,
                mask(r.title),
                names.unit(r.township_id),
                names.unit(r.village_id),
                names.unit(r.unit_id),
                r.category,
                r.risk,
                _yes(r.litigation_risk),
                LEVEL_NAMES[r.level],
                STATUS_NAMES[r.status],
                names.person(r.reporter_id),
                names.person(r.owner_id),
                names.unit(r.department_id),
                _naive(r.created_at),
                r.deadline,
                _naive(r.resolved_at),
                days_open(r.created_at, ended, today),
                overdue_days(r.status, r.deadline, today),
                _yes(r.tuesday),
                "、".join(mask(p) for p in r.phones),
                mask(r.result) if r.result else None,
            )
        )
    return rows


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
