"""handlers.grammar: normalize, parse and suggest (with the verb table's words)."""

from __future__ import annotations

import pytest

from handlers.grammar import normalize
from handlers.verbs import ALIASES as VERBS
from handlers.verbs import parse, suggest


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("＃１２", "#12"),
        ("查看：＃３", "查看:#3"),
        ("上报　路灯坏了", "上报 路灯坏了"),
        ("上\u200b报\u200c #\u200d1\u2060\ufeff", "上报 #1"),
        ("@两难助手 上报 路灯坏了", "上报 路灯坏了"),
        ("上报 @张三 路灯坏了", "上报 路灯坏了"),
        ("上报 路灯坏了 @两难助手", "上报 路灯坏了"),
        ("@两难助手 @李四 办结 #3", "办结 #3"),
        ("  \t 上报 路灯坏了 \t ", "上报 路灯坏了"),
        ("上报\n第一行\n第二行", "上报\n第一行\n第二行"),
        ("上报\n\n  \n第一行 \n\n\n第二行\n", "上报\n第一行\n第二行"),
        ("", ""),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


ALIASES = [(alias, verb) for verb, aliases in VERBS.items() for alias in aliases]


@pytest.mark.parametrize(("alias", "verb"), ALIASES, ids=[a for a, _ in ALIASES])
def test_parse_every_alias_maps_to_its_canonical_verb(alias: str, verb: str) -> None:
    cmd = parse(f"{alias} #7 说明")
    assert (cmd.verb, cmd.refs, cmd.args, cmd.rest) == (verb, (7,), "说明", "#7 说明")


def test_parse_alias_table_covers_the_expected_verbs() -> None:
    assert parse("提交 问题").verb == parse("反映 问题").verb == "上报"
    assert parse("化解 #1").verb == "办结"
    assert {parse(f"{a} #1").verb for a in ("详情", "查看", "查询", "查")} == {"查"}
    assert parse("HELP").verb == parse("？").verb == "帮助"


@pytest.mark.parametrize(
    ("raw", "verb", "refs", "args", "rest"),
    [
        ("上报 #12 理由", "上报", (12,), "理由", "#12 理由"),
        ("上报 问题文字", "上报", (), "问题文字", "问题文字"),
        ("上报：问题文字", "上报", (), "问题文字", "问题文字"),
        ("合并 ＃１２ ＃３", "合并", (12, 3), "", "#12 #3"),
        ("合并 # 12 和#5 以及 ＃９", "合并", (12, 5, 9), "和 以及", "# 12 和#5 以及 #9"),
        ("同意延期 #3", "同意延期", (3,), "", "#3"),
        ("延期 #3 7天", "延期", (3,), "7天", "#3 7天"),
        ("@两难助手 退回 #4 材料不全", "退回", (4,), "材料不全", "#4 材料不全"),
        ("查看#4", "查", (4,), "", "#4"),
        ("help", "帮助", (), "", ""),
        ("helpful", None, (), "helpful", "helpful"),
        ("help me", "帮助", (), "me", "me"),
        ("路灯坏了 #8", None, (8,), "路灯坏了 #8", "路灯坏了 #8"),
        ("", None, (), "", ""),
    ],
)
def test_parse(raw: str, verb: str | None, refs: tuple[int, ...], args: str, rest: str) -> None:
    cmd = parse(raw)
    assert (cmd.verb, cmd.refs, cmd.args, cmd.rest) == (verb, refs, args, rest)
    assert cmd.text == normalize(raw)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("交半", "交办"),
        ("交半 #3", "交办"),
        ("研盘", "研判"),
        ("列彪", "列表"),
        ("统记", "统计"),
        ("xyz", None),
        ("", None),
        ("　", None),
    ],
)
def test_suggest(text: str, expected: str | None) -> None:
    assert suggest(text) == expected
