"""handlers.intake: phones, ID numbers, masking, litigation risk, titles and where an issue belongs."""

from __future__ import annotations

import re

import pytest

from bot.org import load_org
from handlers.intake import has_id_number, litigation_risk, mask, parse_submission, phones_in, title_of

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)  # GB 11643


def with_checksum(first17: str) -> str:
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]


def with_wrong_checksum(first17: str) -> str:
    right = with_checksum(first17)[-1]
    return first17 + ("0" if right != "0" else "1")


ID = with_checksum("33080219900101100")
ID_X = with_checksum("33080219900101103")


def test_checksum_helper() -> None:
    assert ID == "330802199001011005"
    assert ID_X.endswith("X")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("电话13812345678", ["13812345678"]),
        ("电话 138 1234 5678", ["13812345678"]),
        ("电话138-1234-5678", ["13812345678"]),
        ("+86 13812345678", ["13812345678"]),
        ("+86-138-1234-5678", ["13812345678"]),
        ("8613812345678", ["13812345678"]),
        ("座机0570-3012345", ["05703012345"]),
        ("座机0570 3012345", ["05703012345"]),
        (
            "联系13812345678或0570-3012345，另13912345678，再打138 1234 5678",
            ["13812345678", "05703012345", "13912345678"],  # in the order written
        ),
        ("无联系方式，编号12345", []),
        (f"身份证{ID}", []),
    ],
)
def test_phones_in(text: str, expected: list[str]) -> None:
    assert phones_in(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"身份证{ID}号", True),
        (f"身份证 {ID_X}", True),
        (f"身份证 {ID_X.lower()}", True),
        (f"身份证{with_wrong_checksum(ID[:17])}号", False),
        (f"身份证 {with_wrong_checksum(ID_X[:17])}", False),
        (f"编号{ID}1", False),
        ("电话13812345678", False),
    ],
)
def test_has_id_number(text: str, expected: bool) -> None:
    assert has_id_number(text) is expected


def test_mask() -> None:
    assert mask("电话13812345678") == "电话138****5678"
    assert mask("电话+86 138-1234-5678。") == "电话138****5678。"
    masked = mask(f"身份证{ID}，{ID_X}")
    assert masked == "身份证[身份证号已隐藏]，[身份证号已隐藏]"
    assert ID[6:14] not in masked
    wrong = with_wrong_checksum(ID[:17])  # a mistyped ID is still one: hidden too (it counts as none)
    assert mask(f"编号{wrong}") == "编号[身份证号已隐藏]" and not has_id_number(wrong)
    assert "3012345" not in mask("座机0570-3012345")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("当事人扬言要申请行政复议", True),
        ("群众表示将向镇政府提起行政诉讼", True),
        ("多次到区里上访", True),
        ("暂无上访风险", False),
        ("不存在诉讼可能", False),
        ("当事人已撤诉", False),
        ("村口路灯坏了，请尽快维修", False),
        ("", False),
        ("暂无上访风险，但扬言起诉镇政府", True),
    ],
)
def test_litigation_risk(text: str, expected: bool) -> None:
    assert litigation_risk(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "张三反映：村口路灯坏了三个月，晚上出行不便。请尽快维修",
            "村口路灯坏了三个月,晚上出行不便",
        ),  # NFKC: one form of punctuation
        ("村民反映屋顶漏水", "屋顶漏水"),
        ("村口路灯坏了", "村口路灯坏了"),
        ("反映13812345678的邻居占道", "138****5678的邻居占道"),
        (f"反映：身份证{ID}的住户房屋开裂", "身份证[身份证号已隐藏]的住户房屋开裂"),
    ],
)
def test_title_of(text: str, expected: str) -> None:
    assert title_of(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "问题描述：" + "道路积水严重" * 10,
        "反映" + "很长的一句话没有标点" * 8,
        "村口有棵大树倒了挡住了路，村民李四电话13812345678，他家门口也被挡住了，希望尽快处理",
        "联系人13812345678，联系人13912345678，联系人15012345678，座机0570-3012345",
        "反映:" + "占道" * 12 + "13812345678",
    ],
)
def test_title_is_short_and_never_shows_a_phone(text: str) -> None:
    title = title_of(text)
    assert 0 < len(title) <= 30
    assert not re.search(r"\d{7}", title)
    assert not set(phones_in(text)) & set(phones_in(title))


@pytest.fixture(scope="module")
def directory():
    return load_org().directory


@pytest.mark.parametrize(
    ("sender", "text", "township", "village"),
    [
        ("上洋村", "村口路灯坏了", "花园街道", "上洋村"),
        ("花园街道/上洋村", "东港社区的路灯坏了", "花园街道", "上洋村"),  # a village sender stays in their village
        ("航埠镇/新村", "路灯坏了", "航埠镇", "新村"),
        ("花园街道", "东港社区路灯坏了", "花园街道", "东港社区"),
        ("花园街道", "浮石村路灯坏了", "花园街道", None),  # not one of its villages
        ("花园街道", "路灯坏了", "花园街道", None),
        ("航埠镇", "新村路灯坏了", "航埠镇", "新村"),
        ("石梁镇", "新村路灯坏了", "石梁镇", "新村"),
        ("柯城区", "航埠镇有人反映路灯坏了", "航埠镇", None),
        ("柯城区", "沟溪乡余东村道路塌方", "沟溪乡", "余东村"),
        ("柯城区", "上洋村路灯坏了", "花园街道", "上洋村"),
        ("柯城区", "路灯坏了", None, None),
        ("区住建局", "航埠镇危房", "航埠镇", None),
    ],
)
def test_parse_submission_places_the_issue(directory, sender, text, township, village) -> None:
    intake = parse_submission(text, directory.resolve(sender), directory)
    assert (intake.township and intake.township.name) == township
    assert (intake.village and intake.village.name) == village
    if intake.village:
        assert intake.village.parent_id == intake.township.id


def test_parse_submission_district_sender_naming_township_and_duplicate_village(directory) -> None:
    intake = parse_submission("石梁镇新村路灯坏了", directory.resolve("柯城区"), directory)
    assert (intake.township.name, intake.village) == ("石梁镇", directory.resolve("石梁镇/新村"))


def test_parse_submission_collects_title_risk_phones_and_id(directory) -> None:
    text = f"反映：村民张三（{ID}，电话138 1234 5678）宅基地纠纷，扬言起诉"
    intake = parse_submission(text, directory.resolve("上洋村"), directory)
    assert intake.title == "村民张三([身份证号已隐藏],电话138****5678)宅"  # cut at 30 characters
    assert (intake.litigation_risk, intake.litigation_suspected) == (False, True)  # against whom: unclear
    assert intake.phones == ["13812345678"]
    assert intake.has_id_number is True
    assert "1234" not in intake.title
