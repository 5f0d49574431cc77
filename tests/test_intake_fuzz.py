"""Property tests: the parser never raises and always returns the schema, for any string up
to 4,000 characters (control characters and lone surrogates included); masking never leaks."""

from __future__ import annotations

import json
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.org import load_org
from handlers.intake import CATEGORIES, JSON_KEYS, TITLE_LENGTH, IntakeParser, mask, phones_in

DIRECTORY = load_org().directory
PARSER = IntakeParser(DIRECTORY)
SENDERS = [DIRECTORY.resolve(n) for n in ("上洋村", "航埠镇", "柯城区", "区住建局", "航埠镇/新村")]
FRAGMENTS = [
    "上洋村", "新村", "航埠", "石梁镇", "花园", "鱼塘", "反映", "问题描述:", "【两难问题】", "所在村:", "、", "\n",
    "13812345678", "138 1234 5678", "+86-138-1234-5678", "0570-3012345", "１３８１２３４５６７８",
    "330802196503122019", "33080219751110013X", "限3天", "3个工作日内", "12月31日前", "本周五前", "月底前", "年底前",
    "15号前", "暂无上访风险", "起诉", "已撤诉", "拖欠工资", "宅基地", "😡", "\u200b", "\x00", "\ud800", "\udfff",
]  # fmt: skip
TEXT = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(alphabet=st.characters(exclude_categories=()), max_size=40)),
    max_size=120,
).map(lambda parts: "".join(parts)[:4000])


@settings(max_examples=300, deadline=None)
@given(text=TEXT, sender=st.sampled_from(SENDERS), today=st.dates(date(2000, 1, 1), date(2099, 12, 31)))
def test_any_text_parses_to_the_schema(text: str, sender, today: date) -> None:  # type: ignore[no-untyped-def]
    out = PARSER.parse(text, sender, today).as_json()
    assert tuple(k for k in out if k != "ambiguous") == JSON_KEYS
    assert out["category"] in CATEGORIES and isinstance(out["litigation_risk"], bool)
    assert isinstance(out["has_id_number"], bool) and all(p.isdigit() and p.isascii() for p in out["phones"])
    assert out["deadline"] is None or date.fromisoformat(out["deadline"]) >= today
    assert 0 < len(out["title"]) <= TITLE_LENGTH and "\n" not in out["title"]
    json.dumps(out, ensure_ascii=False).encode("utf-8")  # no surrogate reaches the output
    if "ambiguous" in out:
        assert out["township"] is None and out["village"] is None and len(out["ambiguous"]) >= 2


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.characters(exclude_categories=()), max_size=4000))
def test_any_string_at_all(text: str) -> None:
    for sender in SENDERS:
        PARSER.parse(text, sender, date(2020, 3, 2))


@settings(max_examples=300, deadline=None)
@given(text=TEXT)
def test_mask_hides_every_phone_it_finds(text: str) -> None:
    masked = mask(text)
    assert not phones_in(masked) and mask(masked) == masked
