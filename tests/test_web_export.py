"""The ledger export: .xlsx that openpyxl opens with the right headers, real date cells, a
frozen header row, widths that fit and masked phones; .csv with a BOM that round-trips to
the same values; both scoped by token, and the same from `liandong export`."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.cli import main as cli
from bot.web.export import COLUMNS, CSV_TYPE, HEADERS, XLSX_TYPE, display_width, to_csv, to_xlsx
from tests.web_seed import ID_NUMBER
from tests.web_support import WebEnv, csv_records, download, records, sheet

RAW_PHONE = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")
MASKED = re.compile(r"^(1[3-9][0-9]\*{4}[0-9]{4}|0[0-9]{2,3}-\*{4}[0-9]{4})(、.+)?$")
KIND = dict(COLUMNS)


async def test_xlsx_has_headers_types_frozen_row_fitting_widths_and_masks(client: TestClient, env: WebEnv) -> None:
    body, headers = await download(client, env, "/api/export.xlsx")
    assert headers["Content-Type"] == XLSX_TYPE
    assert "attachment" in headers["Content-Disposition"] and ".xlsx" in headers["Content-Disposition"]
    ws = sheet(body)
    assert ws.freeze_panes == "A2"
    rows = records(ws)
    assert len(rows) == 60 and [r["编号"] for r in rows] == list(range(1, 61))
    for r in rows:
        assert isinstance(r["编号"], int) and isinstance(r["办理天数"], int) and isinstance(r["登记时间"], datetime)
        assert r["截止日期"] is None or isinstance(r["截止日期"], datetime)  # Excel dates come back as datetimes
        assert r["联系电话"] is None or MASKED.match(r["联系电话"]), r["联系电话"]
        assert r["周二无会日"] in ("是", "否", None) and r["状态"] in ("已提交", "已研判", "已交办", "已办结", "已合并")
    for cell in ws["N"][1:] + ws["O"][1:]:  # 登记时间, 截止日期
        assert cell.value is None or (cell.is_date and cell.number_format.startswith("yyyy-mm-dd"))
    first = rows[0]
    assert (first["乡镇(街道)"], first["村(社区)"], first["包案人"], first["截止日期"]) == (
        "花园街道",
        "上洋村",
        "王小明",
        datetime(2020, 3, 6),
    )
    assert first["登记时间"] == datetime(2020, 3, 2, 9, 30)  # Shanghai wall time, not UTC
    every = " ".join(str(v) for r in rows for v in r.values())
    assert not RAW_PHONE.search(every) and ID_NUMBER not in every and "138****0001" in every
    for i, (header, kind) in enumerate(COLUMNS):
        width = ws.column_dimensions[chr(ord("A") + i)].width
        longest = max([display_width(header)] + [display_width(str(r[header])) for r in rows if r[header] is not None])
        if kind == "text":
            assert min(longest, 60) <= width <= min(longest, 60) + 4, (header, width, longest)


async def test_csv_starts_with_a_bom_and_round_trips_to_the_xlsx_values(client: TestClient, env: WebEnv) -> None:
    body, headers = await download(client, env, "/api/export.csv")
    assert headers["Content-Type"] == f"{CSV_TYPE}; charset=utf-8"
    from_csv = csv_records(body)
    from_xlsx = records(sheet((await download(client, env, "/api/export.xlsx"))[0]))
    assert len(from_csv) == len(from_xlsx) == 60

    def text(value: Any, kind: str) -> str:
        if value is None:
            return ""
        if kind == "datetime":
            return value.strftime("%Y-%m-%d %H:%M")
        if kind == "date":
            return value.date().isoformat()
        return str(value)

    for c, x in zip(from_csv, from_xlsx, strict=True):
        assert c == {h: text(x[h], KIND[h]) for h in HEADERS}


async def test_exports_follow_the_token_and_the_filters(client: TestClient, env: WebEnv) -> None:
    body, _ = await download(client, env, "/api/export.csv?status=resolved&from=2020-04-01", "hangbu")
    rows = csv_records(body)
    assert rows and {r["乡镇(街道)"] for r in rows} == {"航埠镇"}
    assert {r["状态"] for r in rows} == {"已办结"} and min(r["登记时间"] for r in rows) >= "2020-04-01"
    body, _ = await download(client, env, "/api/export.xlsx?unit=上洋村", "huayuan")
    assert {r["村(社区)"] for r in records(sheet(body))} == {"上洋村"}
    body, _ = await download(client, env, "/api/export.csv?q=没有这样的问题")
    assert csv_records(body) == []


def test_text_that_looks_like_a_formula_stays_text() -> None:
    row: list[Any] = [None] * len(COLUMNS)
    row[0], row[1], row[13] = 7, '=HYPERLINK("http://x","点我")', datetime(2020, 1, 2, 3, 4)
    row[HEADERS.index("办理结果")] = "+86 已处理"
    cell = sheet(to_xlsx([tuple(row)]))["B2"]
    assert cell.data_type == "s" and cell.value.startswith("=HYPERLINK")
    parsed = csv_records(to_csv([tuple(row)]))[0]
    assert parsed["标题"].startswith("'=HYPERLINK") and parsed["办理结果"] == "'+86 已处理"
    assert parsed["登记时间"] == "2020-01-02 03:04" and parsed["截止日期"] == ""


def test_the_cli_export_writes_the_same_ledger(env: WebEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", env.database_url)
    out = tmp_path / "台账.xlsx"
    args = ["--org", str(env.org), "export", "--from", "2020-04-01", "--to", "2020-04-30", "--unit", "花园街道"]
    assert cli([*args, "-o", str(out)]) == 0
    rows = records(sheet(out.read_bytes()))
    assert rows and {r["乡镇(街道)"] for r in rows} == {"花园街道"}
    assert all(date(2020, 4, 1) <= r["登记时间"].date() <= date(2020, 4, 30) for r in rows)
    as_csv = tmp_path / "ledger.csv"
    assert cli([*args, "-o", str(as_csv)]) == 0
    assert [r["编号"] for r in csv_records(as_csv.read_bytes())] == [str(r["编号"]) for r in rows]
    assert cli(["--org", str(env.org), "export", "--format", "csv", "-o", str(as_csv)]) == 0
    assert len(csv_records(as_csv.read_bytes())) == 60
    assert cli(["--org", str(env.org), "export", "--unit", "新村", "-o", str(out)]) == 2  # ambiguous
    assert cli(["--org", str(env.org), "export", "-o", str(tmp_path / "x.pdf")]) == 2
