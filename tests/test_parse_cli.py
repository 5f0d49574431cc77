"""`liandong parse`: one JSON object with exactly the issue's keys; --jsonl in order."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from bot.cli import main
from bot.org import SAMPLE
from handlers.intake import JSON_KEYS

TEXT = "上洋村村民李某反映:宅基地审批卡在区里两年,已有行政复议意向,要求月底前答复,联系电话138 0000 0000"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_one_post(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "parse", "--org", str(SAMPLE), "--sender-unit", "花园街道", "--today", "2020-03-02", TEXT
    )
    assert code == 0 and out.count("\n") == 1
    assert json.loads(out) == {
        "township": "花园街道",
        "village": "上洋村",
        "category": "宅基地与农房",
        "litigation_risk": True,
        "litigation_suspected": False,
        "phones": ["13800000000"],
        "has_id_number": False,
        "deadline": "2020-03-31",
        "title": "宅基地审批卡在区里两年,已有行政复议意向,要求月底前答复",
    }
    assert tuple(json.loads(out)) == JSON_KEYS


def test_org_before_the_subcommand_and_the_district_as_default_sender(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--org", str(SAMPLE), "parse", "--today", "2020-03-02", "新村路灯坏了")
    got = json.loads(out)
    assert code == 0 and got["ambiguous"] == ["航埠镇/新村", "石梁镇/新村"] and got["village"] is None


def test_jsonl_in_order(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [
        {"text": "新村路灯坏了", "sender_unit": "航埠镇"},
        {"text": "限3天内把路灯修好", "sender_unit": "上洋村", "today": "2020-03-02"},
        {"text": "路灯坏了", "sender_unit": "火星"},
    ]
    stdin = "\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n\nnot json\n" + '{"x": 1}\n'
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code, out, _ = run(capsys, "parse", "--jsonl", "--today", "2020-01-01")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == 5
    assert (rows[0]["township"], rows[0]["village"], rows[0]["deadline"]) == ("航埠镇", "新村", None)
    assert (rows[1]["village"], rows[1]["deadline"]) == ("上洋村", "2020-03-05")
    assert rows[2:] == [
        {"error": "第3行: 未知或重名的单位"},
        {"error": "第5行不是 JSON"},
        {"error": '第6行缺少 "text"'},
    ]


def test_bad_arguments(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "parse", "--sender-unit", "新村", "路灯坏了")
    assert code == 2 and err == "未知或重名的单位: 新村\n"
    code, _, err = run(capsys, "parse")
    assert code == 2 and err.startswith("请给出要解析的文字")
    bad = tmp_path / "c.yaml"
    bad.write_text("治安:\n  强: [打架]\n", encoding="utf-8")
    code, _, err = run(capsys, "parse", "--categories", str(bad), "打架")
    assert code == 2 and "未知类别「治安」" in err


def test_an_edited_category_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    mine = tmp_path / "c.yaml"
    mine.write_text("环境与生态:\n  强: [葡萄架]\n", encoding="utf-8")
    code, out, _ = run(capsys, "parse", "葡萄架倒了")
    assert code == 0 and json.loads(out)["category"] == "其他"  # a word the shipped file and model do not know
    code, out, _ = run(capsys, "parse", "--categories", str(mine), "葡萄架倒了")
    assert code == 0 and json.loads(out)["category"] == "环境与生态"
