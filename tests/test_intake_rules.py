"""handlers.intake rule by rule: places, deadlines, litigation risk, categories and the
category file, similarity."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from bot.org import load_org
from handlers.intake import CategoryFileError, CategoryModel, IntakeParser, litigation_risk
from handlers.intake.categories import shipped_file
from handlers.intake.due import deadline_in
from handlers.intake.similarity import content, is_near_duplicate
from models.calendar import WorkdayCalendar

DIRECTORY = load_org().directory
PARSER = IntakeParser(DIRECTORY)
KEYWORDS = CategoryModel.from_yaml(shipped_file())  # the shipped file alone, without the character model
CAL = WorkdayCalendar()
MONDAY = date(2020, 3, 2)


def place(sender: str, text: str) -> tuple[str | None, str | None, tuple[str, ...]]:
    got = PARSER.parse(text, DIRECTORY.resolve(sender), MONDAY)  # type: ignore[arg-type]
    return (got.township and got.township.name, got.village and got.village.name, got.ambiguous)


@pytest.mark.parametrize(
    ("sender", "text", "expected"),
    [
        ("柯城区", "上洋村路灯坏了", ("花园街道", "上洋村", ())),
        ("柯城区", "上洋社区路灯坏了", ("花园街道", "上洋村", ())),  # alias before a place word
        ("柯城区", "花园上洋路灯坏了", ("花园街道", "上洋村", ())),  # alias next to its township
        ("柯城区", "航埠·北二 路灯坏了", ("航埠镇", "北二村", ())),
        ("柯城区", "东坑反映村里停水", ("石室乡", "东坑村", ())),  # the subject of a report
        ("柯城区", "所在村:余东\n问题:停水", ("沟溪乡", "余东村", ())),  # after a field label
        ("柯城区", "坊门街老小区停水", ("府山街道", "坊门街社区", ())),  # a street name is a place
        ("黄家街道", "黄塘、下祝两个村交界处有人采砂", ("黄家街道", "黄塘村", ())),  # siblings listed
        ("柯城区", "村里鱼塘被污染了", (None, None, ())),  # an alias used as a word
        ("柯城区", "林家的房子漏雨", (None, None, ())),
        ("柯城区", "小区花园里有人倒垃圾", (None, None, ())),
        ("柯城区", "新村路灯坏了", (None, None, ("航埠镇/新村", "石梁镇/新村"))),  # ask, do not guess
        ("柯城区", "石梁镇新村路灯坏了", ("石梁镇", "新村", ())),  # a township named in the text
        ("柯城区", "航埠新村路灯坏了", ("航埠镇", "新村", ())),
        ("航埠镇", "新村路灯坏了", ("航埠镇", "新村", ())),  # else the sender's township
        ("花园街道", "新村路灯坏了", ("花园街道", None, ())),  # not a village of theirs
        ("柯城区", "黄土岭村民反映", ("七里乡", "黄土岭村", ())),  # the longest name wins
        ("上洋村", "东港社区路灯坏了", ("花园街道", "上洋村", ())),  # village staff report their own village
    ],
)
def test_where_a_post_belongs(sender: str, text: str, expected: tuple) -> None:
    assert place(sender, text) == expected


@pytest.mark.parametrize(
    ("text", "today", "expected"),
    [
        ("请限3天内修好", MONDAY, date(2020, 3, 5)),
        ("限期十天", MONDAY, date(2020, 3, 12)),
        ("要求一周内整改", MONDAY, date(2020, 3, 9)),
        ("半个月内修好", MONDAY, date(2020, 3, 17)),
        ("一个月内解决", MONDAY, date(2020, 4, 2)),
        ("请3个工作日内处理", date(2020, 4, 28), date(2020, 5, 6)),  # over the May Day holiday
        ("5个工作日内到现场", date(2020, 9, 28), date(2020, 10, 12)),  # 国庆, and the working Saturday
        ("12月31日前答复", MONDAY, date(2020, 12, 31)),
        ("1月10日前答复", date(2020, 12, 20), date(2021, 1, 10)),  # already past: next year's
        ("2020年3月20日前审核", MONDAY, date(2020, 3, 20)),
        ("2020-06-15前安排", MONDAY, date(2020, 6, 15)),
        ("4月底前完工", MONDAY, date(2020, 4, 30)),
        ("本周五前疏通", MONDAY, date(2020, 3, 6)),
        ("周五之前拆掉", date(2020, 3, 4), date(2020, 3, 6)),
        ("下周一前给结论", date(2020, 3, 4), date(2020, 3, 9)),
        ("月底前给答复", date(2020, 3, 10), date(2020, 3, 31)),
        ("下个月底前", date(2020, 3, 10), date(2020, 4, 30)),
        ("年底前交房", date(2020, 11, 20), date(2020, 12, 31)),
        ("要求15号前退还", MONDAY, date(2020, 3, 15)),
        ("明天前转移", MONDAY, date(2020, 3, 3)),
        ("今天下班前给说法", MONDAY, MONDAY),
        ("工人要求3日内解决,最迟月底前", MONDAY, date(2020, 3, 5)),  # the first written
        ("拖了3个月", MONDAY, None),  # a duration
        ("去年12月31日前已经签了协议", MONDAY, None),  # a past fact
        ("截至3月1日仍未发放", MONDAY, None),
        ("3天前反映的", MONDAY, None),
        ("近一个月内发生三起", MONDAY, None),
        ("上个月底已经修好", MONDAY, None),
        ("路灯坏了", MONDAY, None),
    ],
)
def test_deadlines(text: str, today: date, expected: date | None) -> None:
    assert deadline_in(text, today, CAL) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("已向法院提起行政诉讼", True),
        ("要去北京上访", True),
        ("要去镇里、区里告", True),
        ("再不解决就到区里去闹", True),
        ("多次到乡政府静坐", True),
        ("对镇里的处罚不服,准备申请仲裁", True),
        ("征地协商未果,将申请复议", True),  # 未果 is no negation
        ("村民代表要联名去镇里反映", False),  # an ordinary complaint
        ("暂无上访风险", False),
        ("没有再上访的打算", False),
        ("但未提起行政复议", False),
        ("不会再去信访了", False),
        ("已撤回行政复议申请", False),
        ("上访十多年,今年已息诉罢访", False),  # resolved after
        ("已撤诉,但仍扬言上访", True),  # and risky again
        ("纠纷已过诉讼时效", False),
    ],
)
def test_litigation_risk(text: str, expected: bool) -> None:
    assert litigation_risk(text) is expected


def test_place_names_never_score_a_category() -> None:
    assert PARSER.parse("新宅村反映情况", DIRECTORY.resolve("新宅村"), MONDAY).category == "其他"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("拖欠工资", "劳资纠纷"),  # the longer word, once
        ("居民楼下水道堵了", "基础设施"),  # overlapping words both count: 楼下 and 下水道
        ("工程", "其他"),  # one weak word is no signal
        ("拆迁修路", "其他"),  # a tie
        ("", "其他"),
        ("村民被电信诈骗了5万元", "其他"),  # a subject outside the nine, listed under 其他
        # Two subjects: the one the demand is about wins (counted flat, each is a tie).
        ("企业偷排废水被查了,企业说是设备故障,要求撤销处罚", "行政执法"),
        ("家里的老房子被暴雨冲垮了一半,一家人没地方住,希望申请临时救助", "社会保障与救助"),
        ("之前因为拖欠工资闹过,现在有异味", "环境与生态"),  # background weighs less
    ],
)
def test_category_scoring(text: str, expected: str) -> None:
    assert KEYWORDS.classify(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("厂里拖欠我们三个月工资,老板电话打不通", "劳资纠纷"),
        # Wording no keyword lists: the character model knows it from the labelled posts.
        ("村口的小木桥被大水冲走了一半,学生上学过不去", "基础设施"),
        ("隔壁酒吧天天放音乐到凌晨两点,吵得睡不着", "环境与生态"),
        ("村民在耕地上违法建厂房,请乡里依法处置", "行政执法"),
        # Two subjects: the demand's, though the other is named first.
        ("路面被大车压坏了,河边有人偷倒建筑垃圾,请执法队来查处偷倒的人", "行政执法"),
        ("儿子不管老人,老人一个人住生活困难,希望申请低保", "社会保障与救助"),
        ("老人生活困难,儿子一直不管,要求村里调解让儿子赡养", "邻里与婚姻家庭"),
        ("家里的老房子被暴雨冲垮了一半,一家人没地方住,希望申请临时救助", "社会保障与救助"),
        # Nothing stands out from 其他.
        ("□□□反映情况", "其他"),
        ("村里有点事", "其他"),
        ("", "其他"),
    ],
)
def test_the_shipped_classifier_with_its_character_model(text: str, expected: str) -> None:
    assert PARSER.categories.chars is not None
    assert PARSER.categories.classify(text) == expected


TWO = CategoryModel.from_yaml("劳资纠纷:\n  强: [工资, 包工头]\n基础设施:\n  强: [路灯]\n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Named first, the wages would win (×1.25); the request to a unit is the demand (×1.5).
        ("工资的事吵了几回,路灯也坏了,请街道派人修路灯", "基础设施"),
        ("工资的事吵了几回,路灯也坏了", "劳资纠纷"),  # no request: the first subject
        ("请假回来发现工资少了,路灯坏了", "劳资纠纷"),  # 请假 is not a request
        # A threat's words (counted flat, 6 against 3.75) are the risk flag's, not the subject.
        ("路灯坏了半个月,再不修就找包工头讨工资去", "基础设施"),
        ("路灯坏了半个月,还找包工头讨工资去", "劳资纠纷"),
    ],
)
def test_a_request_to_a_unit_is_the_demand_and_a_threat_weighs_little(text: str, expected: str) -> None:
    assert TWO.classify(text) == expected


def test_an_edited_category_file_changes_the_result(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("劳资纠纷:\n  强: [葡萄]\n", encoding="utf-8")
    model = CategoryModel.load(f)
    assert model.classify("葡萄园的事") == "劳资纠纷" and model.classify("拖欠工资") == "其他"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("未知类:\n  强: [词语]\n", "未知类别「未知类」"),
        ("劳资纠纷:\n  很强: [工资]\n", "应为 强/中/弱"),
        ("劳资纠纷:\n  强: [工]\n", "太短"),
        ("劳资纠纷:\n  强: [工资]\n基础设施:\n  弱: [工资]\n", "同时出现在「劳资纠纷」和「基础设施」"),
        ("劳资纠纷: [工资\n", "YAML 格式错误"),
        ("- 工资\n", "顶层应为"),
    ],
)
def test_a_bad_category_file_is_refused_with_the_reason(tmp_path: Path, body: str, message: str) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(body, encoding="utf-8")
    with pytest.raises(CategoryFileError, match=message):
        CategoryModel.load(f)


def test_the_category_file_can_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.config import Settings
    from handlers.intake import categories

    f = tmp_path / "c.yaml"
    f.write_text("环境与生态:\n  强: [葡萄架]\n", encoding="utf-8")
    assert IntakeParser(DIRECTORY).parse("葡萄架倒了", DIRECTORY.district).category == "其他"
    monkeypatch.setenv(categories.ENV_FILE, str(f))
    categories.use_file(Settings.from_env().category_file)  # as bot.app does when it builds the app
    try:
        assert IntakeParser(DIRECTORY).parse("葡萄架倒了", DIRECTORY.district).category == "环境与生态"
    finally:
        categories.use_file(None)


def test_near_duplicates_ignore_places_and_stock_words() -> None:
    def dup(a: str, b: str) -> bool:
        return is_near_duplicate(content(a, PARSER.places), content(b, PARSER.places))

    first = "黄塘村委反映：老郑家和隔壁老徐家为了滴水檐吵了十几年，上周又动手了"
    assert dup(first, "黄塘村老郑和老徐两家的滴水檐纠纷，今天又吵起来了，差点动手")
    assert not dup(first, "黄塘村反映：村民家的电表被换成智能表后电费翻了一倍")
    assert not dup("上洋村反映路灯坏了", "东港社区反映路灯坏了")  # too little left to judge
